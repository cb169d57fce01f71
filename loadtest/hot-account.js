// Hot account: most payments credit one merchant account (a big retailer's collection account);
// the rest are ordinary payments between customers. Payers of the merchant live on its shard
// (a payment may not cross shards: that is the payment saga's job).
//   RATE (payments/s, default 200), DURATION (s, default 30), VUS (default 64),
//   HOT_SHARE (fraction of payments to the merchant, default 0.9)
import {
  duration,
  meta,
  num,
  paymentTo,
  summary,
  summaryTrendStats,
  thresholds,
  uniformPayment,
  vus,
} from './lib/bank.js';

const share = num('HOT_SHARE', 0.9);
const hotShard = meta.shards[meta.hot.shard];

export const options = {
  scenarios: {
    hot_account: {
      executor: 'constant-arrival-rate',
      rate: num('RATE', 200),
      timeUnit: '1s',
      duration: duration(),
      preAllocatedVUs: vus(),
      maxVUs: vus(),
    },
  },
  thresholds: thresholds(),
  summaryTrendStats,
};

export default function () {
  if (Math.random() < share) paymentTo(hotShard, meta.hot.account);
  else uniformPayment();
}

export const handleSummary = summary;
