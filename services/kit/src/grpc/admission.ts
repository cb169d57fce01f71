// Admission: past its capacity a service sheds at once instead of queueing work until every
// caller times out. Two limits, both checked before any work is done for a call:
//   - requests in flight in this process (ADMISSION_MAX_IN_FLIGHT). Reads (Get*, List*, Check*,
//     Preview*, Compute*) may use every slot; writes leave a share of them (ADMISSION_READ_RESERVE_PERCENT)
//     to reads, so a flood of payments does not stop a channel from showing balances;
//   - a rate per calling channel (CHANNEL_RATE_LIMITS, a token bucket holding one second of its
//     rate), so one channel cannot take the capacity of the others.
// A shed call gets RESOURCE_EXHAUSTED with reason OVERLOADED or RATE_LIMITED and a retry hint
// (google.rpc.RetryInfo, and `retry_after_ms` in the ErrorInfo metadata).
import { Counter, Gauge } from 'prom-client';
import { DomainError } from '../errors.js';
import { registry } from '../metrics.js';

const shed = new Counter({
  name: 'grpc_admission_shed_total',
  help: 'calls refused at admission (RESOURCE_EXHAUSTED), by reason',
  labelNames: ['service', 'reason'] as const,
  registers: [registry],
});

const inFlightGauge = new Gauge({
  name: 'grpc_in_flight_requests',
  help: 'calls being served now',
  labelNames: ['service'] as const,
  registers: [registry],
});

export interface AdmissionLimits {
  /** Calls served at once by this process; 0: no limit. */
  maxInFlight: number;
  /** Percent of maxInFlight that only reads may use. */
  readReservePercent: number;
  /** Calls per second per channel; '*' applies to channels not named. Absent: no limit. */
  channelRates: ReadonlyMap<string, number>;
}

/** Channel buckets kept at most: old ones are dropped first (a dropped bucket starts full again). */
const MAX_BUCKETS = 10_000;

export class AdmissionGate {
  private inFlight = 0;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly service: string,
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Counts a call in; throws RESOURCE_EXHAUSTED when it is over the in-flight limit. Call leave()
   * after. `readOnly`: a read (audit.ts isReadOnlyMethod, the one rule for what is a read).
   */
  enter(readOnly: boolean): void {
    const max = this.limits.maxInFlight;
    if (max > 0) {
      const cap = readOnly ? max : Math.max(1, Math.floor((max * (100 - this.limits.readReservePercent)) / 100));
      if (this.inFlight >= cap) {
        shed.inc({ service: this.service, reason: 'OVERLOADED' });
        // A busy service drains a slot in about one call's time: a short, jittered wait.
        throw overloaded(
          'OVERLOADED',
          'the service is at capacity; retry shortly',
          50 + Math.floor(Math.random() * 150),
        );
      }
    }
    this.inFlight++;
    inFlightGauge.set({ service: this.service }, this.inFlight);
  }

  leave(): void {
    this.inFlight--;
    inFlightGauge.set({ service: this.service }, this.inFlight);
  }

  /** Takes one token of the channel's rate; throws RESOURCE_EXHAUSTED when its bucket is empty. */
  charge(channel: string): void {
    const rate = this.limits.channelRates.get(channel) ?? this.limits.channelRates.get('*');
    if (rate === undefined) return;
    const now = this.now();
    let b = this.buckets.get(channel);
    if (b) {
      this.buckets.delete(channel);
      b.tokens = Math.min(rate, b.tokens + ((now - b.at) * rate) / 1000);
      b.at = now;
    } else {
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: rate, at: now };
    }
    this.buckets.set(channel, b); // re-inserted: the map's order is least recently used first
    if (b.tokens < 1) {
      shed.inc({ service: this.service, reason: 'RATE_LIMITED' });
      const waitMs = Math.ceil(((1 - b.tokens) * 1000) / rate);
      throw overloaded('RATE_LIMITED', `the channel is over its rate of ${rate} calls per second`, waitMs);
    }
    b.tokens -= 1;
  }

  get current(): number {
    return this.inFlight;
  }
}

function overloaded(reason: string, message: string, retryAfterMs: number): DomainError {
  return new DomainError(
    'RESOURCE_EXHAUSTED',
    reason,
    message,
    [],
    { retry_after_ms: String(retryAfterMs) },
    retryAfterMs,
  );
}
