// Steady: payments between random customers (same shard) at a constant arrival rate.
//   RATE (requests/s, default 200), DURATION (s, default 30), VUS (default 64),
//   PER_REQUEST (payments per CreateTransfers call, default 1: a gateway that aggregates sends more)
// When RATE is above what the bank holds, k6 drops the iterations it cannot start (reported as
// dropped_iterations) and the run measures the bank's capacity with VUS requests in flight.
import {
  duration,
  num,
  summary,
  summaryTrendStats,
  thresholds,
  uniformPayment,
  uniformPayments,
  vus,
} from './lib/bank.js';

const perRequest = num('PER_REQUEST', 1);

export const options = {
  scenarios: {
    steady: {
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
  if (perRequest === 1) uniformPayment();
  else uniformPayments(perRequest);
}

export const handleSummary = summary;
