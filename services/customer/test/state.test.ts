// The state machines as tables: every (from, to) pair, legal, illegal or unchanged.
import { DomainError } from '@corebank/kit';
import { CustomerStatus as S, KycStatus as K } from '@corebank/kit/gen/corebank/v1/customer';
import { describe, expect, it } from 'vitest';
import { kycTransition, statusTransition } from '../src/state.js';

const KYC = [K.KYC_STATUS_PENDING, K.KYC_STATUS_SUBMITTED, K.KYC_STATUS_VERIFIED, K.KYC_STATUS_REJECTED];
const KYC_LEGAL = new Set(['PENDING>SUBMITTED', 'SUBMITTED>VERIFIED', 'SUBMITTED>REJECTED', 'REJECTED>SUBMITTED']);
const STATUS = [S.CUSTOMER_STATUS_ACTIVE, S.CUSTOMER_STATUS_FROZEN, S.CUSTOMER_STATUS_CLOSED];
const STATUS_LEGAL = new Set(['ACTIVE>FROZEN', 'FROZEN>ACTIVE', 'ACTIVE>CLOSED', 'FROZEN>CLOSED']);

const kycName = (k: K) => K[k].replace('KYC_STATUS_', '');
const statusName = (s: S) => S[s].replace('CUSTOMER_STATUS_', '');

function outcome(fn: () => string): string {
  try {
    return fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    const e = err as DomainError;
    expect(e.code).toBe('FAILED_PRECONDITION');
    return `${e.reason} ${e.metadata.from}>${e.metadata.to}`;
  }
}

describe('KYC state machine', () => {
  const pairs = KYC.flatMap((from) => KYC.map((to) => [from, to] as const));
  it.each(pairs.map(([f, t]) => [kycName(f), kycName(t), f, t] as const))('%s -> %s', (fn, tn, from, to) => {
    const expected =
      from === to ? 'unchanged' : KYC_LEGAL.has(`${fn}>${tn}`) ? 'changed' : `ILLEGAL_KYC_TRANSITION ${fn}>${tn}`;
    expect(outcome(() => kycTransition(from, to))).toBe(expected);
  });

  it('names both states in the message', () => {
    expect(() => kycTransition(K.KYC_STATUS_VERIFIED, K.KYC_STATUS_SUBMITTED)).toThrow(
      'kyc_status: cannot go from VERIFIED to SUBMITTED',
    );
  });
});

describe('lifecycle state machine', () => {
  const pairs = STATUS.flatMap((from) => STATUS.map((to) => [from, to] as const));
  it.each(pairs.map(([f, t]) => [statusName(f), statusName(t), f, t] as const))('%s -> %s', (fn, tn, from, to) => {
    const expected =
      from === to ? 'unchanged' : STATUS_LEGAL.has(`${fn}>${tn}`) ? 'changed' : `ILLEGAL_STATUS_TRANSITION ${fn}>${tn}`;
    expect(outcome(() => statusTransition(from, to))).toBe(expected);
  });

  it('never leaves CLOSED', () => {
    expect(() => statusTransition(S.CUSTOMER_STATUS_CLOSED, S.CUSTOMER_STATUS_ACTIVE)).toThrow(
      'status: cannot go from CLOSED to ACTIVE',
    );
  });
});
