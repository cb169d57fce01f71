// Admission: past its capacity a service sheds at once instead of queueing work until every
// caller times out. Two limits, both checked before any work is done for a call:
//   - requests in flight in this process (ADMISSION_MAX_IN_FLIGHT). Reads (Get*, List*, Check*,
//     Preview*, Compute*) may use every slot; writes leave a share of them (ADMISSION_READ_RESERVE_PERCENT)
//     to reads, so a flood of payments does not stop a channel from showing balances;
//   - a rate per calling channel (CHANNEL_RATE_LIMITS, a token bucket holding one second of its
//     rate), so one channel cannot take the capacity of the others.
// With a latency target (ADMISSION_LATENCY_TARGET_MS) the writes' share is a ceiling, not the
// limit: the limit on writes adapts (AIMD) so that admitted writes take about the target. A
// constant limit sized for the peak lets an overloaded service queue a full limit's worth of work
// inside it (64 slots at 60 writes a second is a second of queue for every admitted call); one
// sized for the latency target sheds work the service could have done at normal load. Only a
// window of ADAPT_WINDOW_MS in which writes met the limit moves it (else it is not what makes them
// slow): if its admitted writes took longer on average than the target, the limit falls by a
// fifth, down to an eighth of the ceiling (a starved process still serves); if they took less, it
// rises by a tenth (at least one), up to the ceiling. Reads are not limited by it: they keep
// every slot of ADMISSION_MAX_IN_FLIGHT. It needs ADMISSION_MAX_IN_FLIGHT > 0 (the ceiling).
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
  /** Mean time of admitted writes the write limit adapts to keep; 0 or absent: a fixed limit. */
  latencyTargetMs?: number;
}

/** How often the adaptive write limit looks at the writes it admitted. */
export const ADAPT_WINDOW_MS = 250;
/** The adaptive write limit never goes below this, nor below an eighth of its ceiling. */
export const MIN_WRITE_LIMIT = 2;

const writeLimitGauge = new Gauge({
  name: 'grpc_admission_write_limit',
  help: 'writes this process admits at once now (adaptive with ADMISSION_LATENCY_TARGET_MS, else the fixed share)',
  labelNames: ['service'] as const,
  registers: [registry],
});

/** Channel buckets kept at most: old ones are dropped first (a dropped bucket starts full again). */
const MAX_BUCKETS = 10_000;

export class AdmissionGate {
  private inFlight = 0;
  private writesInFlight = 0;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** The most writes admitted at once: the fixed share, or the ceiling of the adaptive limit. */
  private readonly writeCeiling: number;
  private writeLimit: number;
  private readonly writeFloor: number;
  /** The current window of the adaptive limit: its start, admitted writes' times, whether it filled. */
  private window = { start: 0, n: 0, totalMs: 0, full: false };

  constructor(
    private readonly service: string,
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = () => performance.now(),
  ) {
    const max = limits.maxInFlight;
    this.writeCeiling = max > 0 ? Math.max(1, Math.floor((max * (100 - limits.readReservePercent)) / 100)) : Infinity;
    this.writeLimit = this.writeCeiling;
    this.writeFloor = Math.min(this.writeCeiling, Math.max(MIN_WRITE_LIMIT, Math.ceil(this.writeCeiling / 8)));
    this.window.start = now();
    if (Number.isFinite(this.writeLimit)) writeLimitGauge.set({ service }, this.writeLimit);
  }

  private get adaptive(): boolean {
    return (this.limits.latencyTargetMs ?? 0) > 0 && this.limits.maxInFlight > 0;
  }

  /** Writes admitted at once now. */
  get currentWriteLimit(): number {
    return this.writeLimit;
  }

  /**
   * Counts a call in; throws RESOURCE_EXHAUSTED when it is over the in-flight limit. Call leave()
   * after. `readOnly`: a read (audit.ts isReadOnlyMethod, the one rule for what is a read).
   */
  enter(readOnly: boolean): void {
    const max = this.limits.maxInFlight;
    if (max > 0) {
      const over = readOnly
        ? this.inFlight >= max
        : this.inFlight >= this.writeCeiling || this.writesInFlight >= this.writeLimit;
      if (!readOnly && this.writesInFlight >= this.writeLimit) this.window.full = true;
      if (over) {
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
    if (!readOnly) this.writesInFlight++;
    inFlightGauge.set({ service: this.service }, this.inFlight);
  }

  /** Counts a call out (as it came in); `ms`: how long it took (a write's time feeds the adaptive limit). */
  leave(readOnly: boolean, ms = 0): void {
    this.inFlight--;
    if (!readOnly) {
      this.writesInFlight--;
      if (this.adaptive) this.sample(ms);
    }
    inFlightGauge.set({ service: this.service }, this.inFlight);
  }

  private sample(ms: number): void {
    const w = this.window;
    w.n++;
    w.totalMs += ms;
    const now = this.now();
    if (now - w.start < ADAPT_WINDOW_MS) return;
    const target = this.limits.latencyTargetMs!;
    if (w.full && w.totalMs / w.n > target) {
      this.writeLimit = Math.max(this.writeFloor, Math.floor(this.writeLimit * 0.8));
    } else if (w.full) {
      this.writeLimit = Math.min(this.writeCeiling, this.writeLimit + Math.max(1, Math.floor(this.writeLimit / 10)));
    }
    writeLimitGauge.set({ service: this.service }, this.writeLimit);
    this.window = { start: now, n: 0, totalMs: 0, full: false };
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
