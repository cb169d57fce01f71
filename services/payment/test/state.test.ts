import { PaymentKind as K, PaymentStatus as S, PaymentStep as P } from '@corebank/kit/gen/corebank/v1/payment';
import { describe, expect, it } from 'vitest';
import { nextAfter, transition } from '../src/state.js';

const transferAt = (step: P) => ({ step, kind: K.PAYMENT_KIND_TRANSFER, reason: '' });

describe('payment state machine', () => {
  it('allows the transitions of the table and refuses the others with FAILED_PRECONDITION', () => {
    expect(() => transition(S.PAYMENT_STATUS_ACCEPTED, S.PAYMENT_STATUS_HELD)).not.toThrow();
    expect(() => transition(S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_COMPLETED)).not.toThrow();
    expect(() => transition(S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_PARTIALLY_REFUNDED)).not.toThrow();
    expect(() => transition(S.PAYMENT_STATUS_PARTIALLY_REFUNDED, S.PAYMENT_STATUS_REFUNDED)).not.toThrow();
    for (const [from, to] of [
      [S.PAYMENT_STATUS_REJECTED, S.PAYMENT_STATUS_COMPLETED],
      [S.PAYMENT_STATUS_COMPLETED, S.PAYMENT_STATUS_HELD],
      [S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_ACCEPTED],
      [S.PAYMENT_STATUS_ACCEPTED, S.PAYMENT_STATUS_REFUNDED],
      [S.PAYMENT_STATUS_REFUNDED, S.PAYMENT_STATUS_PARTIALLY_REFUNDED],
    ] as const) {
      expect(() => transition(from, to)).toThrow(
        expect.objectContaining({ code: 'FAILED_PRECONDITION', reason: 'ILLEGAL_PAYMENT_TRANSITION' }),
      );
    }
  });

  it('leads every step outcome to a legal next status', () => {
    const cases: [S, P, 'ok' | 'refused', S, P][] = [
      [S.PAYMENT_STATUS_ACCEPTED, P.PAYMENT_STEP_TRANSFER, 'ok', S.PAYMENT_STATUS_COMPLETED, P.PAYMENT_STEP_DONE],
      [S.PAYMENT_STATUS_ACCEPTED, P.PAYMENT_STEP_TRANSFER, 'refused', S.PAYMENT_STATUS_REJECTED, P.PAYMENT_STEP_DONE],
      [S.PAYMENT_STATUS_ACCEPTED, P.PAYMENT_STEP_HOLD, 'ok', S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_CREDIT],
      [S.PAYMENT_STATUS_ACCEPTED, P.PAYMENT_STEP_HOLD, 'refused', S.PAYMENT_STATUS_REJECTED, P.PAYMENT_STEP_DONE],
      [S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_CREDIT, 'ok', S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_POST],
      [S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_CREDIT, 'refused', S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_VOID],
      [S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_POST, 'ok', S.PAYMENT_STATUS_COMPLETED, P.PAYMENT_STEP_DONE],
      [S.PAYMENT_STATUS_HELD, P.PAYMENT_STEP_VOID, 'ok', S.PAYMENT_STATUS_REJECTED, P.PAYMENT_STEP_DONE],
    ];
    for (const [from, step, outcome, status, nextStep] of cases) {
      const next = nextAfter(transferAt(step), outcome)!;
      expect([next.status, next.step]).toEqual([status, nextStep]);
      if (next.status !== from) expect(() => transition(from, next.status)).not.toThrow();
    }
    // Settling the hold has no "refused" outcome: it is retried until the ledger does it.
    expect(nextAfter(transferAt(P.PAYMENT_STEP_POST), 'refused')).toBeUndefined();
    expect(nextAfter(transferAt(P.PAYMENT_STEP_VOID), 'refused')).toBeUndefined();
  });

  it('holds an escrow until it is released, and ends a cancelled or upheld one CANCELLED', () => {
    const escrow = (step: P, reason = '') => ({ step, kind: K.PAYMENT_KIND_ESCROW, reason });
    expect(nextAfter(escrow(P.PAYMENT_STEP_HOLD), 'ok')).toMatchObject({
      status: S.PAYMENT_STATUS_HELD,
      step: P.PAYMENT_STEP_AWAIT_RELEASE,
    });
    expect(nextAfter(escrow(P.PAYMENT_STEP_AWAIT_RELEASE), 'ok')).toMatchObject({
      status: S.PAYMENT_STATUS_HELD,
      step: P.PAYMENT_STEP_CREDIT,
      event: 'payment_escrow_released',
    });
    for (const reason of ['ESCROW_CANCELLED', 'DISPUTE_UPHELD']) {
      expect(nextAfter(escrow(P.PAYMENT_STEP_VOID, reason), 'ok')).toMatchObject({
        status: S.PAYMENT_STATUS_CANCELLED,
        event: 'payment_cancelled',
      });
    }
    // A credit that failed after the release voids the hold too: that is a rejection.
    expect(nextAfter(escrow(P.PAYMENT_STEP_VOID, 'TRANSFER_RESULT_CODE_ACCOUNT_CLOSED'), 'ok')!.status).toBe(
      S.PAYMENT_STATUS_REJECTED,
    );
    expect(() => transition(S.PAYMENT_STATUS_HELD, S.PAYMENT_STATUS_DISPUTED)).not.toThrow();
    expect(() => transition(S.PAYMENT_STATUS_DISPUTED, S.PAYMENT_STATUS_CANCELLED)).not.toThrow();
    expect(() => transition(S.PAYMENT_STATUS_CANCELLED, S.PAYMENT_STATUS_HELD)).toThrow();
    expect(() => transition(S.PAYMENT_STATUS_PENDING_REVIEW, S.PAYMENT_STATUS_ACCEPTED)).not.toThrow();
    expect(() => transition(S.PAYMENT_STATUS_PENDING_REVIEW, S.PAYMENT_STATUS_COMPLETED)).toThrow();
  });
});
