// Owner-wide freeze and close, as the customer service drives them.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { balances, cashAccount, expectRpcError, fund, K, openAccounts, R, transfer } from './helpers.js';

describe.each([1, 3])('owner lifecycle on %i shard(s)', (shards) => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(shards);
  });
  afterAll(async () => bank?.stop());

  it('freezing blocks debits on every account of the owner at once; credits still arrive', async () => {
    const owner = `f-${randomUUID()}`;
    const [a, b, c] = await openAccounts(bank, 3, { owner });
    await fund(bank, a!, 500n);
    const held = transfer({
      debitAccountId: a!.id,
      creditAccountId: b!.id,
      amount: 100n,
      kind: K.TRANSFER_KIND_PENDING,
    });
    await bank.client.createTransfers({ transfers: [held] });
    expect((await bank.client.setOwnerDebitsBlocked({ ownerId: owner, blocked: true })).accounts).toBe(3);
    for (const x of [a, b, c]) expect((await balances(bank, x!.id)).debitsBlocked).toBe(true);

    const debit = transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 1n });
    const res = await bank.client.createTransfers({ transfers: [debit] });
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED);
    await fund(bank, b!, 5n); // credits still arrive
    // A hold taken before the freeze can still be posted.
    const post = transfer({
      debitAccountId: a!.id,
      creditAccountId: b!.id,
      kind: K.TRANSFER_KIND_POST_PENDING,
      pendingId: held.id,
    });
    expect((await bank.client.createTransfers({ transfers: [post] })).results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    // Idempotent: freezing again changes nothing.
    expect((await bank.client.setOwnerDebitsBlocked({ ownerId: owner, blocked: true })).accounts).toBe(3);

    await bank.client.setOwnerDebitsBlocked({ ownerId: owner, blocked: false });
    const after = transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 1n });
    expect((await bank.client.createTransfers({ transfers: [after] })).results[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_OK,
    );
    // The refusal during the freeze stays final for its id.
    expect((await bank.client.createTransfers({ transfers: [debit] })).results[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED,
    );
  });

  it("closes all of an owner's accounts only when every one is at zero", async () => {
    const owner = `c-${randomUUID()}`;
    const [a, b] = await openAccounts(bank, 2, { owner });
    await fund(bank, a!, 300n);
    const err = await expectRpcError(
      bank.client.closeOwnerAccounts({ ownerId: owner }),
      status.FAILED_PRECONDITION,
      undefined,
      'ACCOUNT_BALANCE_NOT_ZERO',
    );
    expect(err.message).toContain(a!.id);
    expect((await balances(bank, b!.id)).closed).toBe(false); // all or none
    const cash = await cashAccount(bank, a!.shard);
    await bank.client.createTransfers({
      transfers: [transfer({ debitAccountId: a!.id, creditAccountId: cash.id, amount: 300n })],
    });
    expect((await bank.client.closeOwnerAccounts({ ownerId: owner })).accountsClosed).toBe(2);
    expect((await balances(bank, a!.id)).closed).toBe(true);
    expect((await bank.client.closeOwnerAccounts({ ownerId: owner })).accountsClosed).toBe(2);
    const res = await bank.client.createTransfers({
      transfers: [transfer({ debitAccountId: cash.id, creditAccountId: a!.id, amount: 1n })],
    });
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_CLOSED);
  });

  it('needs the accounts:admin scope and an owner id', async () => {
    const channel = await bank.token(['accounts:read', 'accounts:write', 'transfers:write']);
    await expectRpcError(
      bank.client.setOwnerDebitsBlocked({ ownerId: 'x', blocked: true }, { token: channel }),
      status.PERMISSION_DENIED,
    );
    await expectRpcError(bank.client.closeOwnerAccounts({ ownerId: '' }), status.INVALID_ARGUMENT, 'owner_id');
  });
});
