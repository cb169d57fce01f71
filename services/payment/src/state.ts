// The payment order state machine, as a table of legal status transitions, and the saga's steps:
// what each step does on the ledger and where each of its outcomes leads. Everything that changes
// an order's status asks transition() first; anything not in the table is FAILED_PRECONDITION,
// reason ILLEGAL_PAYMENT_TRANSITION, naming both states.
import { DomainError } from '@corebank/kit';
import { PaymentStatus as S, PaymentStep as P } from '@corebank/kit/gen/corebank/v1/payment';

/**
 * ACCEPTED -> HELD (cross shard) | COMPLETED (same shard) | REJECTED; HELD -> COMPLETED | REJECTED;
 * COMPLETED -> REVERSED | PARTIALLY_REFUNDED | REFUNDED; PARTIALLY_REFUNDED -> itself (another
 * partial refund) | REFUNDED. REJECTED, REVERSED and REFUNDED are final.
 */
export const PAYMENT_TRANSITIONS: Readonly<Record<S, readonly S[]>> = {
  [S.PAYMENT_STATUS_UNSPECIFIED]: [],
  [S.PAYMENT_STATUS_ACCEPTED]: [S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_REJECTED],
  [S.PAYMENT_STATUS_HELD]: [S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_REJECTED],
  [S.PAYMENT_STATUS_COMPLETED]: [
    S.PAYMENT_STATUS_REVERSED,
    S.PAYMENT_STATUS_PARTIALLY_REFUNDED,
    S.PAYMENT_STATUS_REFUNDED,
  ],
  [S.PAYMENT_STATUS_PARTIALLY_REFUNDED]: [S.PAYMENT_STATUS_PARTIALLY_REFUNDED, S.PAYMENT_STATUS_REFUNDED],
  [S.PAYMENT_STATUS_REJECTED]: [],
  [S.PAYMENT_STATUS_REVERSED]: [],
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

/** The saga's settled statuses: nothing more happens to the order without a new request. */
export const isSettled = (s: S): boolean => s !== S.PAYMENT_STATUS_ACCEPTED && s !== S.PAYMENT_STATUS_HELD;

/** What a step's ledger call came to. */
export type Outcome = 'ok' | 'refused';

/** Where an outcome of a step leads: the order's next status and step, and the event's name. */
export interface Next {
  status: S;
  step: P;
  event: string;
}

const done = (status: S): Next => ({
  status,
  step: P.PAYMENT_STEP_DONE,
  event: status === S.PAYMENT_STATUS_COMPLETED ? 'payment_completed' : 'payment_rejected',
});

/**
 * The saga, step by step. A same-shard order is one transfer. A cross-shard order holds the
 * payer's funds, then credits the payee; a definitive credit failure voids the hold (REJECTED),
 * a credit posts it (COMPLETED). Post and void cannot be refused for an order in this state
 * (their only refusals mean a bug or a ledger outage), so they have only an 'ok' outcome.
 */
export function nextAfter(step: P, outcome: Outcome): Next | undefined {
  switch (step) {
    case P.PAYMENT_STEP_TRANSFER:
      return done(outcome === 'ok' ? S.PAYMENT_STATUS_COMPLETED : S.PAYMENT_STATUS_REJECTED);
    case P.PAYMENT_STEP_HOLD:
      return outcome === 'ok'
        ? { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_CREDIT, event: 'payment_held' }
        : done(S.PAYMENT_STATUS_REJECTED);
    case P.PAYMENT_STEP_CREDIT:
      return outcome === 'ok'
        ? { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_POST, event: 'payment_credited' }
        : { status: S.PAYMENT_STATUS_HELD, step: P.PAYMENT_STEP_VOID, event: 'payment_credit_failed' };
    case P.PAYMENT_STEP_POST:
      return outcome === 'ok' ? done(S.PAYMENT_STATUS_COMPLETED) : undefined;
    case P.PAYMENT_STEP_VOID:
      return outcome === 'ok' ? done(S.PAYMENT_STATUS_REJECTED) : undefined;
    default:
      return undefined;
  }
}
