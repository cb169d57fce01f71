// Payments through the payment service (CreatePayment), as a channel sends them.
//   MODE       uniform (default): between random customers, CROSS_PCT % of them across shards;
//              hot-payee: HOT_SHARE of the orders pay one merchant account, the rest are uniform;
//              hot-payer: HOT_SHARE of the orders are paid by one corporate account to many customers;
//              overload: uniform, at RATE with up to MAX_VUS in flight (the harness offers 3x capacity)
//   RATE (orders/s, default 200), DURATION (s, default 30), VUS (default 64), MAX_VUS (default VUS),
//   CROSS_PCT (default 50), HOT_SHARE (default 0.9), SHED_RETRIES (default 2)
//   GATE_URL (optional): orders only while the harness's gate says go (lib/bank.js gateOpen)
// At a RATE above what the bank holds, k6 drops the arrivals it has no free VU for (dropped_iterations):
// the run then measures capacity with VUS calls in flight.
import { duration, gateOpen, meta, num, summaryTrendStats, vus } from './lib/bank.js';
import { paymentFrom, paymentSummary, paymentThresholds, paymentTo, uniformPayment } from './lib/payments.js';

const mode = __ENV.MODE || 'uniform';
if (!['uniform', 'hot-payee', 'hot-payer', 'overload'].includes(mode)) throw new Error(`MODE: unknown mode ${mode}`);
const share = num('HOT_SHARE', 0.9);
const merchantShard = meta.shards[meta.hot.shard];
const corporateShard = meta.corporate ? meta.shards[meta.corporate.shard] : undefined;
if (mode === 'hot-payer' && !corporateShard) throw new Error('the fixture has no corporate account');

export const options = {
  scenarios: {
    [mode.replace('-', '_')]: {
      executor: 'constant-arrival-rate',
      rate: num('RATE', 200),
      timeUnit: '1s',
      duration: duration(),
      preAllocatedVUs: vus(),
      maxVUs: Math.max(vus(), num('MAX_VUS', vus())),
    },
  },
  thresholds: paymentThresholds(),
  summaryTrendStats,
};

export default function () {
  if (!gateOpen()) return;
  if (mode === 'hot-payee' && Math.random() < share) paymentTo(merchantShard, meta.hot.account);
  else if (mode === 'hot-payer' && Math.random() < share) paymentFrom(corporateShard, meta.corporate.account);
  else uniformPayment();
}

export const handleSummary = paymentSummary;
