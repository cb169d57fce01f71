// Steady: payments between random customers (same shard) at a constant arrival rate.
//   RATE (payments/s, default 200), DURATION (s, default 30), VUS (default 64)
// When RATE is above what the bank holds, k6 drops the iterations it cannot start (reported as
// dropped_iterations) and the run measures the bank's capacity with VUS requests in flight.
import { duration, num, summary, summaryTrendStats, thresholds, uniformPayment, vus } from './lib/bank.js';

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
  uniformPayment();
}

export const handleSummary = summary;
