// Executes payment orders. Each order's step is claimed (a lease in its row), made on the ledger
// with a transfer id derived from the payment and the step, and its outcome recorded with its
// event in one transaction. Three things drive orders: CreatePayment (the first step, inline),
// the saga's JetStream consumer (each non-final event: the next steps), and a sweeper that
// re-drives every order whose step is due (a failed attempt's backoff, or the lease of a process
// that died mid-step, has passed). Whatever runs twice replays on the ledger.
import {
  backoffMs,
  durableConsumer,
  fromTimestamp,
  runConsumer,
  Waker,
  type Logger,
  type Nats,
  type Principal,
  type Shard,
  type ShardRouter,
} from '@corebank/kit';
import { PaymentChanged } from '@corebank/kit/gen/corebank/v1/events';
import { PaymentStep } from '@corebank/kit/gen/corebank/v1/payment';
import { DOMAIN } from './events.js';
import type { Ledger } from './clients/ledger.js';
import { sagaOldestAge, sagaSteps, sagaUnsettled } from './metrics.js';
import { nextAfter, WAITING_STEPS } from './state.js';
import type { PaymentRow } from './proto.js';
import {
  advance,
  claimStep,
  deferStep,
  dueOrders,
  nextDueInMs,
  sagaBacklog,
  stepAdvances,
  type StepAdvances,
} from './store.js';

/** A step's outcome; `claimed`: the order moved on to a step this driver holds (advance's claim). */
export interface StepOutcome {
  result: DriveResult;
  row?: PaymentRow;
  claimed?: boolean;
}

export interface SagaOptions {
  /** Durable consumer name (and inbox consumer key). */
  consumerName: string;
  callTimeoutMs: number;
  maxBackoffMs: number;
  /**
   * The longest the sweeper sleeps. It sleeps until the shard's earliest due step (a retry's
   * backoff, a lease, an escrow timer) and is woken early by steps this process defers and by
   * escrow events; this cap is the safety net for due times set by other replicas meanwhile.
   */
  sweepIntervalMs: number;
  /** Orders the sweeper drives at once, per shard. */
  sweepConcurrency?: number;
  /** Parallel pulls on the durable consumer. */
  consumerConcurrency?: number;
  /** Advances of concurrent steps written many to a statement per shard (absent: one each). */
  advanceBatches?: { maxInFlight: number; maxBatch: number };
}

/** Orders one sweep of a shard takes at most. */
const SWEEP_LIMIT = 500;

/** Steps remembered as made by this process (see Saga.made): the oldest are forgotten first. */
const MAX_REMEMBERED_STEPS = 50_000;

export type DriveResult = 'advanced' | 'deferred' | 'busy';

export class Saga {
  private sweeping = false;
  private sweepers: Promise<void>[] = [];
  /** One per shard sweeper: a single timer each, however often it is woken. */
  private wakers = new Map<number, Waker>();
  private consumers: { stop: () => Promise<void> }[] = [];
  /**
   * Steps this process made and moved past (`id:step`). An order's steps only go forward, so the
   * event that announced such a step (the one the inline first step or a drive made before the
   * consumer received it) has nothing left to do: the consumer skips it without claiming the
   * step again. Only a hint: a process that forgot (restarted, evicted) claims, and finds it done.
   */
  private made = new Set<string>();
  /** Drives going on after the call that started them answered (goOn): stop() waits for them. */
  private going = new Set<Promise<void>>();
  private readonly advances: StepAdvances | undefined;

  constructor(
    private readonly router: ShardRouter,
    private readonly ledger: Ledger,
    private readonly log: Logger,
    private readonly o: SagaOptions,
  ) {
    const b = o.advanceBatches;
    this.advances = b ? stepAdvances(router, b.maxInFlight, b.maxBatch) : undefined;
  }

  /** The lease a claimed step holds: the ledger call's deadline and a margin. */
  get leaseMs(): number {
    return this.o.callTimeoutMs + 2000;
  }

  /**
   * One step of one order, if it is due and nobody else holds it. `claimed`: the order with its
   * step claimed already (by its creator, insertOrder's claimForMs, or by the advance of a step
   * before). `claimNext`: the caller goes on with the order at once, so the advance claims the
   * next step for it (the next step's event then needs nothing of the consumer).
   */
  async step(
    shard: Shard,
    id: string,
    deadline?: Date,
    onBehalfOf?: Principal,
    claimed?: PaymentRow,
    claimNext = false,
  ): Promise<StepOutcome> {
    const lease = claimNext ? this.leaseMs : undefined;
    const row = claimed ?? (await claimStep(shard, id, this.leaseMs));
    if (!row) return { result: 'busy' };
    if (row.step === PaymentStep.PAYMENT_STEP_AWAIT_RELEASE) {
      // An escrow whose auto-release time passed (the step is only due then): the seller is paid.
      const after = await advance(
        shard,
        row,
        { ...nextAfter(row, 'ok')!, reason: 'AUTO_RELEASED', escrowOutcome: 'AUTO_RELEASED' },
        lease,
        this.advances,
      );
      if (after?.claimed) this.remember(id, after.step);
      return { result: 'advanced', row: after ?? row, claimed: after?.claimed === true };
    }
    const res = await this.ledger.execute(row, deadline, onBehalfOf);
    sagaSteps.inc({ step: PaymentStep[row.step] ?? String(row.step), outcome: res.kind });
    if (res.kind === 'retry') {
      const wait = backoffMs(row.attempts, { baseMs: 100, maxMs: this.o.maxBackoffMs });
      this.log.warn(
        { payment_id: id, step: row.step, attempts: row.attempts, retry_in_ms: wait, reason: res.error.reason },
        `payment step failed; retrying: ${res.error.message}`,
      );
      await deferStep(shard, row, wait);
      this.wakeAt(shard, Date.now() + wait);
      return { result: 'deferred', row };
    }
    const next = nextAfter(row, res.kind);
    if (!next) throw new Error(`payment ${id}: step ${row.step} has no outcome ${res.kind}`);
    const after = await advance(
      shard,
      row,
      { ...next, ...(res.kind === 'refused' ? { reason: res.reason } : {}) },
      lease,
      this.advances,
    );
    if (after) this.remember(id, row.step);
    // The next step is this driver's: its event needs no claim from the consumer.
    if (after?.claimed) this.remember(id, after.step);
    return { result: 'advanced', row: after ?? row, claimed: after?.claimed === true };
  }

  /**
   * Says this process makes the order's step itself now (the inline first step, a decision's
   * drive): the consumer skips the event that announced the step instead of racing for its claim.
   * A caller whose attempt fails before it claims must wake the sweeper (wakeAt), which then
   * drives the order.
   */
  expect(id: string, step: PaymentStep): void {
    this.remember(id, step);
  }

  private remember(id: string, step: PaymentStep): void {
    if (this.made.size >= MAX_REMEMBERED_STEPS) this.made.delete(this.made.values().next().value!);
    this.made.add(`${id}:${step}`);
  }

  /**
   * Drives an order until it settles, waits for a retry, or another driver holds it. `claimed`:
   * the order with its step claimed for this drive already (a step's advance claimed it).
   */
  async drive(shard: Shard, id: string, claimed?: PaymentRow): Promise<void> {
    let held = claimed;
    for (let i = 0; i < 8; i++) {
      // Each advance claims the step after it, but the last: this loop would not make that one.
      const { result, row, claimed: next } = await this.step(shard, id, undefined, undefined, held, i < 7);
      // Settled, or waiting for a person or a timer: no step to claim.
      if (result !== 'advanced' || !row || row.step === PaymentStep.PAYMENT_STEP_DONE) return;
      if (WAITING_STEPS.includes(row.step)) return;
      // The next step is this loop's: its event needs no claim from the consumer.
      this.remember(id, row.step);
      held = next ? row : undefined;
    }
  }

  /**
   * Goes on with an order whose next step the caller's advance claimed (StepOutcome.claimed), after
   * the caller answered: what the consumer would do on the step's event, without the claim or the
   * wait for the event. A drive that fails leaves the step to the sweeper once the lease passes.
   */
  goOn(shard: Shard, row: PaymentRow): void {
    const going: Promise<void> = this.drive(shard, row.id, row)
      .catch((err: unknown) =>
        this.log.warn({ err, payment_id: row.id }, 'payment drive failed; the sweeper retries it'),
      )
      .finally(() => this.going.delete(going));
    this.going.add(going);
  }

  /** Makes the shard's sweeper run by `at` (epoch ms) at the latest. */
  wakeAt(shard: Shard, at: number): void {
    this.wakers.get(shard.index)?.wakeAt(at);
  }

  start(nats: Nats | undefined): Promise<void> {
    if (this.o.sweepIntervalMs > 0) {
      this.sweeping = true;
      for (const s of this.router.shards) this.wakers.set(s.index, new Waker());
      this.sweepers = this.router.shards.map((s) => this.sweepLoop(s));
    }
    return nats ? this.startConsumer(nats) : Promise.resolve();
  }

  private async startConsumer(nats: Nats): Promise<void> {
    // One filter for the domain (nats-server 2.9 takes a single subject); the handler skips
    // events after which the saga has nothing to do (the order is done, or waits for a person or
    // its escrow timer: the sweeper drives timers).
    const consumer = await durableConsumer(nats.js, nats.jsm, {
      domain: DOMAIN,
      durable: this.o.consumerName,
      filterSubjects: [`corebank.${DOMAIN}.>`],
      // The consumer only hurries the saga along; the sweeper drives every order that is due. A
      // consumer created on a stream with history (a renamed consumer; in tests, every test
      // file's own) would otherwise claim a step for every past event: one wasted round trip each.
      startAt: 'new',
    });
    const handle = async (msg: { subject: string; data: Uint8Array }) => {
      const event = PaymentChanged.decode(msg.data);
      const step = event.payment?.step ?? PaymentStep.PAYMENT_STEP_DONE;
      const id = event.payment?.id ?? '';
      const shard = this.router.byId(id);
      if (!shard || !event.meta) return;
      // An escrow's timer: the sweeper of its shard (in this process) wakes when it runs out.
      const releaseAt = event.payment?.autoReleaseAt;
      if (step === PaymentStep.PAYMENT_STEP_AWAIT_RELEASE && releaseAt) {
        this.wakeAt(shard, fromTimestamp(releaseAt).getTime());
      }
      if (step === PaymentStep.PAYMENT_STEP_DONE || WAITING_STEPS.includes(step)) return;
      if (this.made.delete(`${id}:${step}`)) return;
      // No inbox row: nothing would read it. The effect is idempotent by itself: a step is
      // claimed only while due and not held (claimStep), its ledger transfers have ids derived
      // from the payment and the step, and an order past the event's step has nothing to do, so
      // a redelivered or duplicated event drives the order at most to where it already is.
      await this.drive(shard, id);
    };
    for (let i = 0; i < (this.o.consumerConcurrency ?? 8); i++) {
      this.consumers.push(runConsumer(consumer, this.log, handle));
    }
  }

  private async sweepLoop(shard: Shard): Promise<void> {
    const waker = this.wakers.get(shard.index)!;
    let lastGauge = 0;
    while (this.sweeping) {
      let sleepMs = this.o.sweepIntervalMs;
      try {
        const driven = await this.sweepOnce(shard);
        // A full sweep may leave more due orders: go on at once. Otherwise sleep until the
        // earliest due step (read after this sweep's deferrals), within the cap.
        sleepMs = driven >= SWEEP_LIMIT ? 0 : Math.min(sleepMs, await nextDueInMs(shard));
        if (Date.now() - lastGauge > 5_000) {
          lastGauge = Date.now();
          const { n, age } = await sagaBacklog(shard);
          sagaUnsettled.set({ shard: String(shard.index) }, n);
          sagaOldestAge.set({ shard: String(shard.index) }, age);
        }
      } catch (err) {
        this.log.warn({ err, shard: shard.index }, 'payment sweeper failed; will retry');
      }
      if (!this.sweeping) break;
      await waker.sleep(sleepMs);
    }
  }

  /** Drives every due order of a shard; returns how many there were. */
  async sweepOnce(shard: Shard): Promise<number> {
    const ids = await dueOrders(shard, SWEEP_LIMIT);
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined && this.sweeping; id = queue.shift()) {
        await this.drive(shard, id).catch((err: unknown) =>
          this.log.warn({ err, payment_id: id }, 'payment sweeper: drive failed'),
        );
      }
    };
    await Promise.all(Array.from({ length: this.o.sweepConcurrency ?? 16 }, worker));
    return ids.length;
  }

  async stop(): Promise<void> {
    this.sweeping = false;
    this.wakers.forEach((w) => w.wake());
    await Promise.all(this.sweepers);
    await Promise.all(this.consumers.map((c) => c.stop()));
    await Promise.all(this.going);
  }
}
