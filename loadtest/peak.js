// Peak: a shopping-festival funnel. Each iteration is one checkout: two reads (the payer's balance,
// the merchant's account) then the payment. The arrival rate ramps like a festival night: warm-up
// browsing, the countdown, the spike at midnight held briefly, then a long tail.
//   PEAK_RATE (checkouts/s at the spike, default 300), DURATION (s of the whole funnel, default 60),
//   VUS (default 64); HOLD_RATE (checkouts/s): instead of the funnel, hold this rate for DURATION
//   (the harness uses it for the latency at 70% of the peak the machine held).
import {
  call,
  createTransfers,
  duration,
  num,
  peerOf,
  randInt,
  randomAccount,
  summary,
  summaryTrendStats,
  thresholds,
  transfer,
  vus,
} from './lib/bank.js';

const peak = num('PEAK_RATE', 300);
const hold = num('HOLD_RATE', 0);
const total = num('DURATION', 60);
// The funnel, as (fraction of the run, fraction of the peak rate reached at its end).
const FUNNEL = [
  [0.15, 0.2], // evening browsing
  [0.15, 0.5], // the countdown
  [0.1, 1.0], // midnight: the spike
  [0.2, 1.0], // held at the peak
  [0.25, 0.6], // the long tail
  [0.15, 0.2], // winding down
];

const scenario = hold
  ? {
      executor: 'constant-arrival-rate',
      rate: hold,
      timeUnit: '1s',
      duration: duration(),
      preAllocatedVUs: vus(),
      maxVUs: vus(),
    }
  : {
      executor: 'ramping-arrival-rate',
      startRate: Math.max(1, Math.round(peak * 0.05)),
      timeUnit: '1s',
      preAllocatedVUs: vus(),
      maxVUs: vus(),
      stages: FUNNEL.map(([f, r]) => ({
        duration: `${Math.max(1, Math.round(f * total))}s`,
        target: Math.round(r * peak),
      })),
    };

export const options = {
  scenarios: { peak: scenario },
  thresholds: thresholds({ 'grpc_req_duration{op:read}': [`p(99)<${num('P99_MS', 100)}`] }),
  summaryTrendStats,
};

export default function () {
  // A checkout: the customer's balance, the seller's account, then the payment to the seller.
  const payer = randomAccount();
  const seller = peerOf(payer);
  call('GetAccount', { account_id: payer.id }, 'read', { discard: true });
  call('GetAccount', { account_id: seller }, 'read', { discard: true });
  createTransfers([transfer(payer.id, seller, 1 + randInt(100), 'bench checkout')], 'transfer');
}

export const handleSummary = summary;
