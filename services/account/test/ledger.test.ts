// Every ledger rule with its result code, on one shard and on three.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PendingStatus } from '@corebank/kit/gen/corebank/v1/account';
import { startBank, type TestBank } from './bank.js';
import { balances, cashAccount, expectRpcError, fund, K, openAccounts, R, transfer } from './helpers.js';

describe.each([1, 3])('ledger on %i shard(s)', (shards) => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(shards);
  });
  afterAll(async () => bank?.stop());

  const send = async (...ts: ReturnType<typeof transfer>[]) =>
    (await bank.client.createTransfers({ transfers: ts })).results;
  const pair = async (funds = 1000n, o: Parameters<typeof openAccounts>[2] = {}) => {
    const [a, b] = await openAccounts(bank, 2, { owner: `cust-${randomUUID()}`, ...o });
    if (funds) await fund(bank, a!, funds);
    return [a!, b!] as const;
  };

  it('opens accounts idempotently and rejects a reused key with a different body', async () => {
    const req = {
      idempotencyKey: 'k1',
      ownerId: `c-${randomUUID()}`,
      currency: 'USD',
      code: 7,
      overdraftLimit: 0n,
      reference: '',
    };
    const first = await bank.client.createAccounts({ accounts: [req] });
    const again = await bank.client.createAccounts({ accounts: [req] });
    expect(again.results[0]!.account!.id).toBe(first.results[0]!.account!.id);
    expect(again.results[0]!.replayed).toBe(true);
    const other = await bank.client.createAccounts({ accounts: [{ ...req, currency: 'EUR' }] });
    expect(other.results[0]!.code).toBe(2 /* EXISTS_WITH_DIFFERENT_BODY */);
    const listed = await bank.client.listAccounts({ ownerId: req.ownerId });
    expect(listed.accounts).toHaveLength(1);
  });

  it("lists an owner's accounts page by page", async () => {
    const owner = `c-${randomUUID()}`;
    const opened = await openAccounts(bank, 5, { owner });
    const seen: string[] = [];
    let token = '';
    do {
      const page = await bank.client.listAccounts({ ownerId: owner, page: { pageSize: 2, pageToken: token } });
      expect(page.accounts.length).toBeLessThanOrEqual(2);
      seen.push(...page.accounts.map((a) => a.id));
      token = page.page!.nextPageToken;
    } while (token);
    expect(seen.sort()).toEqual(opened.map((a) => a.id).sort());
  });

  it('posts a single-phase transfer and replays it for the same id and body', async () => {
    const [a, b] = await pair();
    const t = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 250n });
    const [first] = await send(t);
    expect(first!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    const [again] = await send(t);
    expect(again!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect(again!.replayed).toBe(true);
    expect(again!.transfer!.createdAt).toEqual(first!.transfer!.createdAt);
    expect((await balances(bank, a.id)).debitsPosted).toBe(250n);
    const [changed] = await send({ ...t, amount: 251n });
    expect(changed!.code).toBe(R.TRANSFER_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY);
    expect((await balances(bank, b.id)).creditsPosted).toBe(250n);
  });

  it('refuses debits beyond credits, and the refusal is final for that id', async () => {
    const [a, b] = await pair(100n);
    const t = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 101n });
    const [r] = await send(t);
    expect(r!.code).toBe(R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS);
    expect(r!.field).toBe('transfers[0].amount');
    await fund(bank, a, 1000n);
    const [again] = await send(t);
    expect(again!.code).toBe(R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS);
    expect(again!.replayed).toBe(true);
    expect((await balances(bank, a.id)).debitsPosted).toBe(0n);
  });

  it('allows debits into the overdraft limit and no further', async () => {
    const [a, b] = await pair(100n, { overdraft: 50n });
    expect((await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 150n })))[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_OK,
    );
    expect((await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n })))[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS,
    );
  });

  it('refuses credits beyond debits on a credits_must_not_exceed_debits account', async () => {
    const owner = `c-${randomUUID()}`;
    const res = await bank.client.createAccounts({
      accounts: [
        {
          idempotencyKey: 'loan',
          ownerId: owner,
          currency: 'EUR',
          code: 1,
          overdraftLimit: 0n,
          reference: '',
          flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: true },
        },
        { idempotencyKey: 'src', ownerId: owner, currency: 'EUR', code: 1, overdraftLimit: 0n, reference: '' },
      ],
    });
    const [loan, src] = res.results.map((r) => r.account!);
    const [r] = await send(transfer({ debitAccountId: src!.id, creditAccountId: loan!.id, amount: 1n }));
    expect(r!.code).toBe(R.TRANSFER_RESULT_CODE_EXCEEDS_DEBITS);
  });

  it('names the reason for accounts that are the same, missing, or in another currency', async () => {
    const [a] = await pair();
    const [usd] = await openAccounts(bank, 1, { currency: 'USD', owner: a.ownerId });
    const missing = randomUUID().slice(0, -4) + a.id.slice(-4); // same bucket, so same shard
    const r = await send(
      transfer({ debitAccountId: a.id, creditAccountId: a.id, amount: 1n }),
      transfer({ debitAccountId: a.id, creditAccountId: usd!.id, amount: 1n }),
      transfer({ debitAccountId: missing, creditAccountId: a.id, amount: 1n }),
      transfer({ debitAccountId: a.id, creditAccountId: randomUUID().slice(0, -4) + a.id.slice(-4), amount: 1n }),
    );
    expect(r.map((x) => x.code)).toEqual([
      R.TRANSFER_RESULT_CODE_ACCOUNTS_MUST_BE_DIFFERENT,
      R.TRANSFER_RESULT_CODE_CURRENCY_MISMATCH,
      R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_FOUND,
      R.TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND,
    ]);
    expect(r[2]!.field).toBe('transfers[2].debit_account_id');
  });

  it('holds funds with a pending transfer, then posts part and releases the rest', async () => {
    const [a, b] = await pair(1000n);
    const p = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 600n, kind: K.TRANSFER_KIND_PENDING });
    expect((await send(p))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    let acc = await balances(bank, a.id);
    expect(acc.debitsPending).toBe(600n);
    // The hold is not spendable twice.
    expect((await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 401n })))[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS,
    );
    const tooMuch = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      amount: 601n,
      kind: K.TRANSFER_KIND_POST_PENDING,
      pendingId: p.id,
    });
    expect((await send(tooMuch))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    const post = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      amount: 400n,
      kind: K.TRANSFER_KIND_POST_PENDING,
      pendingId: p.id,
    });
    expect((await send(post))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    acc = await balances(bank, a.id);
    expect([acc.debitsPending, acc.debitsPosted]).toEqual([0n, 400n]);
    expect((await bank.client.getTransfer({ transferId: p.id })).pendingStatus).toBe(
      PendingStatus.PENDING_STATUS_POSTED,
    );
    const again = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      kind: K.TRANSFER_KIND_VOID_PENDING,
      pendingId: p.id,
    });
    expect((await send(again))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_POSTED);
  });

  it('voids a pending transfer once, and only with its own accounts and amount', async () => {
    const [a, b] = await pair(1000n);
    const [c] = await openAccounts(bank, 1, { owner: a.ownerId });
    const p = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 300n, kind: K.TRANSFER_KIND_PENDING });
    await send(p);
    const voidOf = (o: object) =>
      transfer({
        debitAccountId: a.id,
        creditAccountId: b.id,
        kind: K.TRANSFER_KIND_VOID_PENDING,
        pendingId: p.id,
        ...o,
      });
    const r = await send(
      voidOf({ creditAccountId: c!.id }),
      voidOf({ amount: 5n }),
      voidOf({ pendingId: randomUUID() }),
    );
    expect(r.map((x) => x.code)).toEqual([
      R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS,
      R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT,
      R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_FOUND,
    ]);
    expect((await send(voidOf({})))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await send(voidOf({})))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_ALREADY_VOIDED);
    const acc = await balances(bank, a.id);
    expect([acc.debitsPending, acc.debitsPosted]).toEqual([0n, 0n]);
    const notPending = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n });
    await send(notPending);
    expect((await send(voidOf({ pendingId: notPending.id })))[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_NOT_PENDING,
    );
  });

  it('expires a pending transfer at its timeout and releases the hold', async () => {
    const [a, b] = await pair(1000n);
    const p = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      amount: 700n,
      kind: K.TRANSFER_KIND_PENDING,
      timeoutSeconds: 1,
    });
    await send(p);
    expect((await bank.client.getTransfer({ transferId: p.id })).transfer!.expiresAt).toBeDefined();
    await expect
      .poll(async () => (await bank.client.getTransfer({ transferId: p.id })).pendingStatus, {
        timeout: 10_000,
        interval: 200,
      })
      .toBe(PendingStatus.PENDING_STATUS_EXPIRED);
    expect((await balances(bank, a.id)).debitsPending).toBe(0n);
    const post = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      kind: K.TRANSFER_KIND_POST_PENDING,
      pendingId: p.id,
    });
    expect((await send(post))[0]!.code).toBe(R.TRANSFER_RESULT_CODE_PENDING_TRANSFER_EXPIRED);
  });

  it('applies a linked chain all or nothing, and reports which transfer broke it', async () => {
    const [a, b] = await pair(100n);
    const r = await send(
      transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 60n, linked: true }),
      transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 60n, linked: true }),
      transfer({ debitAccountId: b.id, creditAccountId: a.id, amount: 1n }),
      transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 10n }),
    );
    expect(r.map((x) => x.code)).toEqual([
      R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED,
      R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS,
      R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED,
      R.TRANSFER_RESULT_CODE_OK,
    ]);
    const acc = await balances(bank, a.id);
    expect(acc.debitsPosted).toBe(10n);
    const open = await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n, linked: true }));
    expect(open[0]!.code).toBe(R.TRANSFER_RESULT_CODE_LINKED_EVENT_CHAIN_OPEN);
    const ok = await send(
      transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 30n, linked: true }),
      transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 30n }),
    );
    expect(ok.map((x) => x.code)).toEqual([R.TRANSFER_RESULT_CODE_OK, R.TRANSFER_RESULT_CODE_OK]);
  });

  it('refuses a balance overflow instead of wrapping', async () => {
    const [a, b] = await pair(0n, { constrained: false });
    const max = 9_223_372_036_854_775_807n;
    expect((await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: max })))[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_OK,
    );
    const [r] = await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n }));
    expect(r!.code).toBe(R.TRANSFER_RESULT_CODE_OVERFLOWS_BALANCE);
    expect((await balances(bank, b.id)).creditsPosted).toBe(max);
  });

  it('keeps a statement with running balances, page by page', async () => {
    const [a, b] = await pair(1000n);
    for (const amount of [100n, 200n, 50n])
      await send(transfer({ debitAccountId: a.id, creditAccountId: b.id, amount }));
    const first = await bank.client.getStatement({ accountId: a.id, page: { pageSize: 2, pageToken: '' } });
    expect(first.entries.map((e) => e.postedBalance)).toEqual([1000n, 900n]);
    const second = await bank.client.getStatement({
      accountId: a.id,
      page: { pageSize: 2, pageToken: first.page!.nextPageToken },
    });
    expect(second.entries.map((e) => [e.sequence, e.postedChange, e.postedBalance])).toEqual([
      [3n, -200n, 700n],
      [4n, -50n, 650n],
    ]);
    expect(second.page!.nextPageToken).toBe('');
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field, and writes nothing', async () => {
    const [a, b] = await pair(100n);
    const before = await balances(bank, a.id);
    const base = { debitAccountId: a.id, creditAccountId: b.id, amount: 1n };
    const cases: [ReturnType<typeof transfer>, string][] = [
      [transfer({ ...base, id: '' }), 'transfers[0].id'],
      [transfer({ ...base, id: 'not-a-uuid' }), 'transfers[0].id'],
      [transfer({ ...base, amount: 0n }), 'transfers[0].amount'],
      [transfer({ ...base, amount: -5n }), 'transfers[0].amount'],
      [transfer({ ...base, debitAccountId: 'x' }), 'transfers[0].debit_account_id'],
      [transfer({ ...base, kind: K.TRANSFER_KIND_UNSPECIFIED }), 'transfers[0].kind'],
      [transfer({ ...base, kind: K.TRANSFER_KIND_POST_PENDING }), 'transfers[0].pending_id'],
    ];
    for (const [t, field] of cases) {
      // A good transfer in the same request is not applied either.
      await expectRpcError(
        bank.client.createTransfers({ transfers: [t, transfer(base)].slice(0, field.includes('[0]') ? 2 : 1) }),
        status.INVALID_ARGUMENT,
        field,
      );
    }
    await expectRpcError(bank.client.createTransfers({ transfers: [] }), status.INVALID_ARGUMENT, 'transfers');
    const after = await balances(bank, a.id);
    expect(after.debitsPosted).toBe(before.debitsPosted);
    const badAccount = {
      idempotencyKey: 'x',
      ownerId: 'o',
      currency: 'XXX',
      code: 1,
      overdraftLimit: 0n,
      reference: '',
    };
    await expectRpcError(
      bank.client.createAccounts({ accounts: [badAccount] }),
      status.INVALID_ARGUMENT,
      'accounts[0].currency',
    );
    await expectRpcError(
      bank.client.createAccounts({ accounts: [{ ...badAccount, currency: 'EUR', idempotencyKey: '' }] }),
      status.INVALID_ARGUMENT,
      'accounts[0].idempotency_key',
    );
    expect((await bank.client.listAccounts({ ownerId: 'o' })).accounts).toHaveLength(0);
    await expectRpcError(bank.client.getAccount({ accountId: randomUUID() }), status.NOT_FOUND, 'account_id');
    await expectRpcError(bank.client.getTransfer({ transferId: randomUUID() }), status.NOT_FOUND, 'transfer_id');
  });

  it('authenticates and authorises every call', async () => {
    await expectRpcError(
      bank.client.checkLedgerInvariant({}, { token: '' }),
      status.UNAUTHENTICATED,
      undefined,
      'MISSING_TOKEN',
    );
    await expectRpcError(
      bank.client.checkLedgerInvariant({}, { token: 'garbage' }),
      status.UNAUTHENTICATED,
      undefined,
      'MALFORMED_TOKEN',
    );
    const reader = await bank.token(['accounts:read']);
    await expectRpcError(
      bank.client.checkLedgerInvariant({}, { token: reader }),
      status.PERMISSION_DENIED,
      undefined,
      'MISSING_SCOPE',
    );
    const [a, b] = await pair(100n);
    // Mallory banks on the same shard, so only ownership can stop the transfer.
    let owner = `m-${randomUUID()}`;
    while (bank.app.router.byCustomer(owner).index !== bank.app.router.byCustomer(a.ownerId).index)
      owner = `m-${randomUUID()}`;
    const [mallory] = await openAccounts(bank, 1, { owner });
    const bound = await bank.token(['accounts:read', 'transfers:write'], a.ownerId);
    await expectRpcError(
      bank.client.getAccount({ accountId: mallory!.id }, { token: bound }),
      status.PERMISSION_DENIED,
    );
    const res = await bank.client.createTransfers(
      {
        transfers: [
          transfer({ debitAccountId: mallory!.id, creditAccountId: a.id, amount: 1n }),
          transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n }),
        ],
      },
      { token: bound },
    );
    expect(res.results.map((r) => r.code)).toEqual([
      R.TRANSFER_RESULT_CODE_DEBIT_ACCOUNT_NOT_OWNED,
      R.TRANSFER_RESULT_CODE_OK,
    ]);
  });

  it('keeps debits equal to credits per currency on every shard', async () => {
    const inv = await bank.client.checkLedgerInvariant({});
    expect(inv.ok).toBe(true);
    expect(inv.constraintViolations).toBe(0n);
    expect(
      inv.totals
        .filter((t) => t.shard !== undefined)
        .map((t) => t.shard)
        .sort(),
    ).toContain(shards - 1);
    const cash = await cashAccount(bank, shards - 1);
    expect(cash.system).toBe(true);
  });
});
