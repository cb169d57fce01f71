// Every field of the account service's non-transfer RPCs is bounded to what its column holds:
// bad input is INVALID_ARGUMENT naming the field (never INTERNAL, never NOT_FOUND for a missing
// field), and an unknown owner is NOT_FOUND with nothing written.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { expectRpcError, openAccounts } from './helpers.js';

const MB = 'x'.repeat(1 << 20);

describe('account service request bounds', () => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(2);
  });
  afterAll(async () => bank?.stop());

  const ownerRows = async () => {
    let n = 0;
    for (const s of bank.router.shards) {
      const [{ c }] = (await s.db('owners').count({ c: '*' })) as [{ c: bigint | string }];
      n += Number(c);
    }
    return n;
  };

  it('ListAccounts: a malformed page token, or one from another query, is INVALID_ARGUMENT', async () => {
    const owner = `o-${randomUUID()}`;
    await openAccounts(bank, 3, { owner });
    for (const pageToken of ['abc', 'not a token!', MB, Buffer.from('[1,"x","y"]').toString('base64url')]) {
      await expectRpcError(
        bank.client.listAccounts({ ownerId: owner, page: { pageSize: 1, pageToken } }),
        status.INVALID_ARGUMENT,
        'page.page_token',
      );
    }
    const first = await bank.client.listAccounts({ ownerId: owner, page: { pageSize: 1, pageToken: '' } });
    expect(first.page!.nextPageToken).not.toBe('');
    const err = await expectRpcError(
      bank.client.listAccounts({
        ownerId: `other-${randomUUID()}`,
        page: { pageSize: 1, pageToken: first.page!.nextPageToken },
      }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
    expect(err.details).toContain('is not a token for this query');
    const next = await bank.client.listAccounts({
      ownerId: owner,
      page: { pageSize: 5, pageToken: first.page!.nextPageToken },
    });
    expect(next.accounts).toHaveLength(2);
    expect(next.accounts[0]!.id > first.accounts[0]!.id).toBe(true);
  });

  it('owner ids that hold NUL, are 1 MB or name the bank itself are INVALID_ARGUMENT, and write nothing', async () => {
    const before = await ownerRows();
    for (const ownerId of ['a\u0000b', MB, 'x'.repeat(129), 'system:shard-0', ' ']) {
      await expectRpcError(
        bank.client.setOwnerDebitsBlocked({ ownerId, blocked: true }),
        status.INVALID_ARGUMENT,
        'owner_id',
      );
      await expectRpcError(bank.client.closeOwnerAccounts({ ownerId }), status.INVALID_ARGUMENT, 'owner_id');
      await expectRpcError(bank.client.listAccounts({ ownerId }), status.INVALID_ARGUMENT, 'owner_id');
    }
    expect(await ownerRows()).toBe(before);
  });

  it('an unknown owner is NOT_FOUND for freeze and close, writes nothing, and can still open accounts', async () => {
    const before = await ownerRows();
    for (const ownerId of [randomUUID(), 'not-a-uuid']) {
      await expectRpcError(bank.client.setOwnerDebitsBlocked({ ownerId, blocked: true }), status.NOT_FOUND, 'owner_id');
      await expectRpcError(bank.client.closeOwnerAccounts({ ownerId }), status.NOT_FOUND, 'owner_id');
    }
    expect(await ownerRows()).toBe(before);
    const owner = randomUUID();
    await expectRpcError(bank.client.closeOwnerAccounts({ ownerId: owner }), status.NOT_FOUND);
    const [a] = await openAccounts(bank, 1, { owner });
    expect(a!.closed).toBe(false);
    expect((await bank.client.closeOwnerAccounts({ ownerId: owner })).accountsClosed).toBe(1);
  });

  it('GetAccount, GetStatement and GetTransfer: a missing or malformed id is INVALID_ARGUMENT', async () => {
    await expectRpcError(bank.client.getAccount({ accountId: '' }), status.INVALID_ARGUMENT, 'account_id');
    await expectRpcError(bank.client.getStatement({ accountId: '' }), status.INVALID_ARGUMENT, 'account_id');
    await expectRpcError(bank.client.getTransfer({ transferId: '' }), status.INVALID_ARGUMENT, 'transfer_id');
    for (const bad of ['nope', 'a\u0000b', MB]) {
      await expectRpcError(bank.client.getAccount({ accountId: bad }), status.INVALID_ARGUMENT, 'account_id');
      await expectRpcError(bank.client.getStatement({ accountId: bad }), status.INVALID_ARGUMENT, 'account_id');
      await expectRpcError(bank.client.getTransfer({ transferId: bad }), status.INVALID_ARGUMENT, 'transfer_id');
    }
    // A well-formed id of nothing is NOT_FOUND.
    await expectRpcError(bank.client.getAccount({ accountId: randomUUID().slice(0, -4) + '0001' }), status.NOT_FOUND);
  });

  it('GetStatement: a bad page token, or one of another account, is INVALID_ARGUMENT', async () => {
    const [a, b] = await openAccounts(bank, 2, { owner: `s-${randomUUID()}` });
    for (const pageToken of ['12', 'x', '-1']) {
      await expectRpcError(
        bank.client.getStatement({ accountId: a!.id, page: { pageSize: 1, pageToken } }),
        status.INVALID_ARGUMENT,
        'page.page_token',
      );
    }
    const { encodePageToken } = await import('@corebank/kit');
    const foreign = encodePageToken({ rpc: 'GetStatement', filters: [b!.id] }, ['0']);
    await expectRpcError(
      bank.client.getStatement({ accountId: a!.id, page: { pageSize: 1, pageToken: foreign } }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
    expect(
      (await bank.client.getStatement({ accountId: b!.id, page: { pageSize: 1, pageToken: foreign } })).entries,
    ).toEqual([]);
  });

  it('CreateAccounts: every field is bounded to its column', async () => {
    const good = () => ({
      idempotencyKey: randomUUID(),
      ownerId: `n-${randomUUID()}`,
      currency: 'EUR',
      code: 1,
      overdraftLimit: 0n,
      reference: '',
    });
    const cases: [Record<string, unknown>, string][] = [
      [{ code: 2 ** 31 }, 'accounts[0].code'],
      [{ code: 2 ** 32 - 1 }, 'accounts[0].code'],
      [{ reference: 'a\u0000' }, 'accounts[0].reference'],
      [{ reference: MB }, 'accounts[0].reference'],
      [{ ownerId: 'x\u0000' }, 'accounts[0].owner_id'],
      [{ idempotencyKey: 'k\u0001' }, 'accounts[0].idempotency_key'],
      [{ idempotencyKey: MB }, 'accounts[0].idempotency_key'],
      [{ currency: 'E\u0000R' }, 'accounts[0].currency'],
    ];
    const before = await ownerRows();
    for (const [patch, field] of cases) {
      const err = await expectRpcError(
        bank.client.createAccounts({ accounts: [{ ...good(), ...patch }] }),
        status.INVALID_ARGUMENT,
        field,
      );
      expect(err.details.length).toBeLessThan(400);
      expect(err.details).not.toContain('\u0000');
    }
    expect(await ownerRows()).toBe(before);
  });

  it('OpenDepositAccount: ids and the version are bounded before anything is asked', async () => {
    const ok = { idempotencyKey: 'k', customerId: randomUUID(), productId: 'savings', productVersion: 0 };
    await expectRpcError(
      bank.client.openDepositAccount({ ...ok, productVersion: 2 ** 31 }),
      status.INVALID_ARGUMENT,
      'product_version',
    );
    await expectRpcError(
      bank.client.openDepositAccount({ ...ok, customerId: 'nope' }),
      status.INVALID_ARGUMENT,
      'customer_id',
    );
    await expectRpcError(
      bank.client.openDepositAccount({ ...ok, productId: 'a\u0000' }),
      status.INVALID_ARGUMENT,
      'product_id',
    );
    await expectRpcError(
      bank.client.openDepositAccount({ ...ok, idempotencyKey: MB }),
      status.INVALID_ARGUMENT,
      'idempotency_key',
    );
  });
});
