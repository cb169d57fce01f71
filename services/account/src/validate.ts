// Request checks of the account service's RPCs other than CreateTransfers (ledger/validate.ts):
// every field bounded to what its column holds (migrations.ts), every bad field named at once,
// before anything reaches SQL.
import {
  cursorInt,
  cursorUuid,
  isCurrency,
  readPage,
  repeated,
  text,
  uint32,
  uuid,
  int64,
  Violations,
} from '@corebank/kit';
import type { NewAccount, OpenDepositAccountRequest } from '@corebank/kit/gen/corebank/v1/account';
import type { PageRequest } from '@corebank/kit/gen/corebank/v1/common';

/** owner_id and idempotency_key: text columns, indexed, so kept short. */
export const MAX_KEY = 128;
/** accounts.reference. */
export const MAX_REFERENCE = 256;
/** Most accounts one CreateAccounts opens. */
export const MAX_NEW_ACCOUNTS = 1000;
/** OpenDepositAccount stores its key as `deposit:<key>`, within MAX_KEY. */
export const MAX_DEPOSIT_KEY = 120;
/** The product service's product ids (product.proto). */
const PRODUCT_ID = /^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$/;

/**
 * An owner id: the customer id (any text up to MAX_KEY without control characters; the ledger
 * does not require the customer service's UUIDs), never one of the bank's own GL owners.
 */
export function ownerIdField(v: Violations, field: string, value: string): boolean {
  if (!text(v, field, value, { max: MAX_KEY, required: true })) return false;
  if (value.startsWith('system:')) {
    v.add(field, 'is not a customer id');
    return false;
  }
  return true;
}

/**
 * An account id: the lower-case UUID, or undefined when reported. A UUID that carries no bucket
 * is well-formed but names no account: NOT_FOUND, which the lookup answers.
 */
export function accountIdField(v: Violations, field: string, value: string): string | undefined {
  return uuid(v, field, value, { what: 'an account id' });
}

export function validateOwner(ownerId: string, field = 'owner_id'): void {
  const v = new Violations();
  ownerIdField(v, field, ownerId);
  v.throwIfAny();
}

export function validateAccountId(accountId: string, field = 'account_id'): string {
  const v = new Violations();
  const id = accountIdField(v, field, accountId);
  v.throwIfAny();
  return id!;
}

export function validateNewAccounts(items: NewAccount[]): void {
  const v = new Violations();
  if (repeated(v, 'accounts', items, { min: 1, max: MAX_NEW_ACCOUNTS })) {
    items.forEach((a, i) => {
      const p = `accounts[${i}]`;
      text(v, `${p}.idempotency_key`, a.idempotencyKey, { max: MAX_KEY, required: true });
      ownerIdField(v, `${p}.owner_id`, a.ownerId);
      if (!isCurrency(a.currency)) v.add(`${p}.currency`, 'is not a supported ISO 4217 currency code');
      uint32(v, `${p}.code`, a.code);
      const f = a.flags ?? { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: false };
      if (f.debitsMustNotExceedCredits && f.creditsMustNotExceedDebits) {
        v.add(`${p}.flags`, 'debits_must_not_exceed_credits and credits_must_not_exceed_debits exclude each other');
      }
      if (int64(v, `${p}.overdraft_limit`, a.overdraftLimit, { min: 0n })) {
        if (a.overdraftLimit > 0n && !f.debitsMustNotExceedCredits) {
          v.add(`${p}.overdraft_limit`, 'needs flags.debits_must_not_exceed_credits');
        }
      }
      text(v, `${p}.reference`, a.reference, { max: MAX_REFERENCE });
    });
  }
  v.throwIfAny();
}

export function validateOpenDeposit(req: OpenDepositAccountRequest): void {
  const v = new Violations();
  text(v, 'idempotency_key', req.idempotencyKey, { max: MAX_DEPOSIT_KEY, required: true });
  text(v, 'customer_id', req.customerId, {
    max: 36,
    required: true,
    pattern: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    shape: 'a customer id (UUID)',
  });
  text(v, 'product_id', req.productId, {
    max: 64,
    required: true,
    pattern: PRODUCT_ID,
    shape: 'a product id (2 to 64 lower-case letters, digits or hyphens)',
  });
  uint32(v, 'product_version', req.productVersion);
  v.throwIfAny();
}

/** ListAccounts: the owner and the page; the cursor is the last account id returned. */
export function validateListAccounts(ownerId: string, page: PageRequest | undefined) {
  const v = new Violations();
  ownerIdField(v, 'owner_id', ownerId);
  const p = readPage(v, page, listAccountsQuery(ownerId), ([id, ...rest]) =>
    rest.length ? undefined : cursorUuid(id),
  );
  v.throwIfAny();
  return p;
}

export const listAccountsQuery = (ownerId: string) => ({ rpc: 'ListAccounts', filters: [ownerId] });

/** GetStatement: the account and the page; the cursor is the last entry's sequence number. */
export function validateGetStatement(accountId: string, page: PageRequest | undefined) {
  const v = new Violations();
  const id = accountIdField(v, 'account_id', accountId);
  // A token is tied to its account: without a valid account id there is nothing to check it against.
  const p = readPage(
    v,
    id ? page : { pageSize: page?.pageSize ?? 0, pageToken: '' },
    statementQuery(id ?? ''),
    ([seq, ...rest]) => (rest.length ? undefined : cursorInt(seq)),
  );
  v.throwIfAny();
  return { id: id!, ...p };
}

export const statementQuery = (accountId: string) => ({ rpc: 'GetStatement', filters: [accountId] });
