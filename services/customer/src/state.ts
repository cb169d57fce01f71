// The customer state machines, as tables of legal transitions. Everything that changes a KYC
// status or a lifecycle status asks these first; anything not in a table is refused with
// FAILED_PRECONDITION, reason ILLEGAL_KYC_TRANSITION or ILLEGAL_STATUS_TRANSITION, naming both
// states. Asking for the state a customer is already in is not a transition: it is "unchanged",
// which is how every mutating RPC stays idempotent.
import { DomainError } from '@corebank/kit';
import { CustomerStatus as S, KycStatus as K } from '@corebank/kit/gen/corebank/v1/customer';

/** KYC: PENDING -> SUBMITTED -> VERIFIED | REJECTED; REJECTED -> SUBMITTED (resubmission). VERIFIED is final. */
export const KYC_TRANSITIONS: Readonly<Record<K, readonly K[]>> = {
  [K.KYC_STATUS_UNSPECIFIED]: [],
  [K.KYC_STATUS_PENDING]: [K.KYC_STATUS_SUBMITTED],
  [K.KYC_STATUS_SUBMITTED]: [K.KYC_STATUS_VERIFIED, K.KYC_STATUS_REJECTED],
  [K.KYC_STATUS_VERIFIED]: [],
  [K.KYC_STATUS_REJECTED]: [K.KYC_STATUS_SUBMITTED],
  [K.UNRECOGNIZED]: [],
};

/** Lifecycle: ACTIVE <-> FROZEN; ACTIVE | FROZEN -> CLOSED. CLOSED is final. */
export const STATUS_TRANSITIONS: Readonly<Record<S, readonly S[]>> = {
  [S.CUSTOMER_STATUS_UNSPECIFIED]: [],
  [S.CUSTOMER_STATUS_ACTIVE]: [S.CUSTOMER_STATUS_FROZEN, S.CUSTOMER_STATUS_CLOSED],
  [S.CUSTOMER_STATUS_FROZEN]: [S.CUSTOMER_STATUS_ACTIVE, S.CUSTOMER_STATUS_CLOSED],
  [S.CUSTOMER_STATUS_CLOSED]: [],
  [S.UNRECOGNIZED]: [],
};

export type Transition = 'unchanged' | 'changed';

const kycName = (k: K) => K[k]?.replace('KYC_STATUS_', '') ?? String(k);
const statusName = (s: S) => S[s]?.replace('CUSTOMER_STATUS_', '') ?? String(s);

/** 'unchanged' when from === to, 'changed' when the table allows it; throws otherwise. */
export function kycTransition(from: K, to: K): Transition {
  if (from === to) return 'unchanged';
  if (KYC_TRANSITIONS[from]?.includes(to)) return 'changed';
  throw new DomainError(
    'FAILED_PRECONDITION',
    'ILLEGAL_KYC_TRANSITION',
    `kyc_status: cannot go from ${kycName(from)} to ${kycName(to)}`,
    [],
    { from: kycName(from), to: kycName(to) },
  );
}

export function statusTransition(from: S, to: S): Transition {
  if (from === to) return 'unchanged';
  if (STATUS_TRANSITIONS[from]?.includes(to)) return 'changed';
  throw new DomainError(
    'FAILED_PRECONDITION',
    'ILLEGAL_STATUS_TRANSITION',
    `status: cannot go from ${statusName(from)} to ${statusName(to)}`,
    [],
    { from: statusName(from), to: statusName(to) },
  );
}

/** A closed customer takes no change but closing again. */
export function requireNotClosed(status: S): void {
  if (status === S.CUSTOMER_STATUS_CLOSED) {
    throw new DomainError('FAILED_PRECONDITION', 'CUSTOMER_CLOSED', 'customer_id: the customer is closed');
  }
}
