// The payment order state machine, as a table of legal status transitions, and the saga's steps:
// what each step does on the ledger and where each of its outcomes leads. Everything that changes
// an order's status asks transition() first; anything not in the table is FAILED_PRECONDITION,
// reason ILLEGAL_PAYMENT_TRANSITION, naming both states.
import { DomainError } from '@corebank/kit';
import { PaymentKind as K, PaymentStatus as S, PaymentStep as P } from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentEventName } from './events.js';

/**
 * ACCEPTED -> HELD (cross shard or escrow) | COMPLETED (same shard) | REJECTED;
 * PENDING_REVIEW -> ACCEPTED (approved) | REJECTED; HELD -> COMPLETED | REJECTED | DISPUTED |
 * CANCELLED; DISPUTED -> HELD (the seller is paid) | CANCELLED (the buyer is refunded);
 * COMPLETED -> REVERSED | PARTIALLY_REFUNDED | REFUNDED; PARTIALLY_REFUNDED -> itself (another
 * partial refund) | REFUNDED | REVERSED; REVERSED -> itself (a refund that was in flight).
 * REJECTED, CANCELLED, REVERSED and REFUNDED are final.
 */
export const PAYMENT_TRANSITIONS: Readonly<Record<S, readonly S[]>> = {
  [S.PAYMENT_STATUS_UNSPECIFIED]: [],
  [S.PAYMENT_STATUS_ACCEPTED]: [S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_REJECTED],
  [S.PAYMENT_STATUS_PENDING_REVIEW]: [S.PAYMENT_STATUS_ACCEPTED, S.PAYMENT_STATUS_REJECTED],
  [S.PAYMENT_STATUS_HELD]: [
    S.PAYMENT_STATUS_COMPLETED,
    S.PAYMENT_STATUS_REJECTED,
    S.PAYMENT_STATUS_DISPUTED,
    S.PAYMENT_STATUS_CANCELLED,
  ],
  [S.PAYMENT_STATUS_DISPUTED]: [S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_CANCELLED],
  [S.PAYMENT_STATUS_COMPLETED]: [
    S.PAYMENT_STATUS_REVERSED,
    S.PAYMENT_STATUS_PARTIALLY_REFUNDED,
    S.PAYMENT_STATUS_REFUNDED,
  ],
  [S.PAYMENT_STATUS_PARTIALLY_REFUNDED]: [
    S.PAYMENT_STATUS_PARTIALLY_REFUNDED,
    S.PAYMENT_STATUS_REFUNDED,
    S.PAYMENT_STATUS_REVERSED,
  ],
  [S.PAYMENT_STATUS_REJECTED]: [],
  [S.PAYMENT_STATUS_CANCELLED]: [],
  // A refund begun before the reversal may complete after it: the original stays REVERSED.
  [S.PAYMENT_STATUS_REVERSED]: [S.PAYMENT_STATUS_REVERSED],
  [S.PAYMENT_STATUS_REFUNDED]: [],
  [S.UNRECOGNIZED]: [],
};

export const statusName = (s: S): string => S[s]?.replace('PAYMENT_STATUS_', '') ?? String(s);

/** Throws unless the table allows from -> to. */
export function transition(from: S, to: S): void {
  if (PAYMENT_TRANSITIONS[from]?.includes(to)) return;
  throw new DomainError(
    'FAILED_PRECONDITION',
    'ILLEGAL_PAYMENT_TRANSITION',
    `status: a payment cannot go from ${statusName(from)} to ${statusName(to)}`,
    [],
    { from: statusName(from), to: statusName(to) },
  );
}

/**
 * Final statuses in which the order's money never moved: they count for neither velocity nor a
 * payee being known, a refund in them leaves the original's amount refundable, and the order
 * gives its amount back to the daily limit.
 */
export const NOTHING_MOVED: readonly S[] = [S.PAYMENT_STATUS_REJECTED, S.PAYMENT_STATUS_CANCELLED];

/** Why an order ends CANCELLED: its hold was voided on a party's or the bank's request. */
export const CANCEL_REASONS = ['ESCROW_CANCELLED', 'DISPUTE_UPHELD'] as const;

/** Steps that wait for a person (or the escrow timer), not for the saga: no backlog while in them. */
export const WAITING_STEPS: readonly P[] = [
  P.PAYMENT_STEP_AWAIT_RELEASE,
  P.PAYMENT_STEP_AWAIT_REVIEW,
  P.PAYMENT_STEP_AWAIT_DISPUTE_DECISION,
];

/** What a step's ledger call came to. */
export type Outcome = 'ok' | 'refused';

/** Where an outcome of a step leads: the order's next status and step, and the event's name. */
export interface Next {
  status: S;
  step: P;
  event: PaymentEventName;
}

const EVENT_OF_FINAL: Partial<Record<S, PaymentEventName>> = {
  [S.PAYMENT_STATUS_COMPLETED]: 'payment_completed',
  [S.PAYMENT_STATUS_REJECTED]: 'payment_rejected',
  [S.PAYMENT_STATUS_CANCELLED]: 'payment_cancelled',
};

const done = (status: S): Next => ({ status, step: P.PAYMENT_STEP_DONE, event: EVENT_OF_FINAL[status]! });

/** What of an order decides where a step leads. */
export interface StepOf {
  step: P;
  kind: K;
  reason: string;
}

/**
 * The saga, step by step. A same-shard order is one transfer. A cross-shard order holds the
 * payer's funds, then credits the payee; a definitive credit failure voids the hold (REJECTED),
 * a credit posts it (COMPLETED). An escrow order waits after its hold (AWAIT_RELEASE) until it is
 * confirmed or its auto-release time passes (the sweeper then makes that step: 'ok' releases it);
 * a void on a cancel or an upheld dispute ends it CANCELLED. Post and void cannot be refused for an
 * order in this state (their only refusals mean a bug or a ledger outage), so they have only an
 * 'ok' outcome.
 */
export function nextAfter(order: StepOf, outcome: Outcome): Next | undefined {
  switch (order.step) {
    case P.PAYMENT_STEP_TRANSFER:
      return done(outcome === 'ok' ? S.PAYMENT_STATUS_COMPLETED : S.PAYMENT_STATUS_REJECTED);
    case P.PAYMENT_STEP_HOLD:
      if (outcome !== 'ok') return done(S.PAYMENT_STATUS_REJECTED);
      return order.kind === K.PAYMENT_KIND_ESCROW
        ? { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_AWAIT_RELEASE, event: 'payment_held' }
        : { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_CREDIT, event: 'payment_held' };
    case P.PAYMENT_STEP_AWAIT_RELEASE:
      return outcome === 'ok'
        ? { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_CREDIT, event: 'payment_escrow_released' }
        : undefined;
    case P.PAYMENT_STEP_CREDIT:
      return outcome === 'ok'
        ? { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_POST, event: 'payment_credited' }
        : { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_VOID, event: 'payment_credit_failed' };
    case P.PAYMENT_STEP_POST:
      return outcome === 'ok' ? done(S.PAYMENT_STATUS_COMPLETED) : undefined;
    case P.PAYMENT_STEP_VOID:
      if (outcome !== 'ok') return undefined;
      return done(
        (CANCEL_REASONS as readonly string[]).includes(order.reason)
          ? S.PAYMENT_STATUS_CANCELLED
          : S.PAYMENT_STATUS_REJECTED,
      );
    default:
      return undefined;
  }
}
