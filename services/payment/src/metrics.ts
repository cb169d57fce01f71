// Payment metrics, on the kit's registry (served at /metrics): saga age and backlog per shard,
// and the outcome of every saga step.
import { registry } from '@corebank/kit';
import { Counter, Gauge } from 'prom-client';

export const sagaUnsettled = new Gauge({
  name: 'payment_saga_unsettled_orders',
  help: 'payment orders with saga work left (not waiting for a person or an escrow timer), per shard',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const sagaOldestAge = new Gauge({
  name: 'payment_saga_oldest_unsettled_age_seconds',
  help: 'saga age: seconds since the longest-stuck order with saga work left reached its step, per shard',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const sagaSteps = new Counter({
  name: 'payment_saga_steps_total',
  help: 'saga steps made, by step and outcome (ok, refused, retry)',
  labelNames: ['step', 'outcome'] as const,
  registers: [registry],
});
