import { randomUUID } from 'node:crypto';
import { errorDetails } from '@corebank/kit';
import {
  SystemAccountKind,
  TransferKind,
  TransferResultCode as R,
  type Account,
  type Transfer,
} from '@corebank/kit/gen/corebank/v1/account';
import type { ServiceError } from '@grpc/grpc-js';
import { expect } from 'vitest';
import type { Bank } from './bank.js';

export { R, TransferKind as K };

export function transfer(p: Partial<Transfer> & Pick<Transfer, 'debitAccountId' | 'creditAccountId'>): Transfer {
  return {
    id: randomUUID(),
    amount: 0n,
    kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
    linked: false,
    pendingId: '',
    timeoutSeconds: 0,
    code: 1,
    reference: '',
    currency: '',
    ...p,
  };
}

export async function openAccounts(
  bank: Bank,
  n: number,
  o: { currency?: string; constrained?: boolean; overdraft?: bigint; owner?: string } = {},
): Promise<Account[]> {
  const res = await bank.client.createAccounts({
    accounts: Array.from({ length: n }, () => ({
      idempotencyKey: randomUUID(),
      ownerId: o.owner ?? `cust-${randomUUID()}`,
      currency: o.currency ?? 'EUR',
      code: 10,
      flags: { debitsMustNotExceedCredits: o.constrained ?? true, creditsMustNotExceedDebits: false },
      overdraftLimit: o.overdraft ?? 0n,
      reference: '',
    })),
  });
  return res.results.map((r) => r.account!);
}

export async function cashAccount(bank: Bank, shard: number, currency = 'EUR'): Promise<Account> {
  const { accounts } = await bank.client.listSystemAccounts({});
  const a = accounts.find(
    (s) =>
      s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH &&
      s.account!.shard === shard &&
      s.account!.currency === currency,
  );
  return a!.account!;
}

/** Funds an account from its shard's cash GL account. */
export async function fund(bank: Bank, account: Account, amount: bigint): Promise<void> {
  const cash = await cashAccount(bank, account.shard, account.currency);
  const res = await bank.client.createTransfers({
    transfers: [transfer({ debitAccountId: cash.id, creditAccountId: account.id, amount })],
  });
  expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
}

export async function balances(bank: Bank, id: string) {
  return (await bank.client.getAccount({ accountId: id })).account!;
}

export async function expectRpcError(p: Promise<unknown>, code: number, field?: string, reason?: string) {
  const err = (await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  )) as ServiceError;
  expect(err.code, err.message).toBe(code);
  const d = errorDetails(err);
  if (field) expect(d.violations.map((v) => v.field)).toContain(field);
  if (reason) expect(d.reason).toBe(reason);
  return err;
}
