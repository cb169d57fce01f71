// Freeze, unfreeze and close, against a real account service: every lifecycle transition, legal
// and illegal; the order of the two writes (account service, then customer row, or the other way
// round) that keeps a failure in between on the safe side; and errors passed through.
import { status } from '@grpc/grpc-js';
import { CustomerStatus as S, KycStatus as K, RiskTier, type Customer } from '@corebank/kit/gen/corebank/v1/customer';
import { freePort } from '@corebank/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances, cashAccount, expectRpcError, fund, openAccounts, R, transfer } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import { personRequest } from './fixtures.js';
import { eventsOf, startCustomers, type TestCustomers } from './harness.js';

describe.each([1, 3])('customer lifecycle on %i shard(s)', (shards) => {
  let t: TestCustomers;
  beforeAll(async () => {
    t = await startCustomers(shards);
  });
  afterAll(async () => t?.stop());

  const create = async () => (await t.client.createCustomer(personRequest())).customer!;
  const freeze = (id: string, reason = 'fraud alert') => t.client.freezeCustomer({ customerId: id, reason });
  const unfreeze = (id: string, reason = 'cleared') => t.client.unfreezeCustomer({ customerId: id, reason });
  const close = (id: string, reason = 'customer request') => t.client.closeCustomer({ customerId: id, reason });
  const eventIds = async (id: string) => (await eventsOf(t.app, id)).map((e) => e.id);
  const statusOf = async (id: string) => (await t.client.getCustomer({ customerId: id })).customer!.status;
  /** A customer with one EUR account holding `funds` (zero: an empty account). */
  const withAccount = async (funds = 0n) => {
    const c = await create();
    const [a] = await openAccounts(t.bank, 1, { owner: c.id });
    if (funds) await fund(t.bank, a!, funds);
    return { c, a: a! };
  };
  const drain = async (a: { id: string; shard: number }, amount: bigint) => {
    const cash = await cashAccount(t.bank, a.shard);
    const r = await t.bank.client.createTransfers({
      transfers: [transfer({ debitAccountId: a.id, creditAccountId: cash.id, amount })],
    });
    return r.results[0]!.code;
  };

  /** A fresh customer (with an empty account) driven to the given status. */
  const customerAt = async (s: S): Promise<{ c: Customer; a: { id: string; shard: number } }> => {
    const { c, a } = await withAccount();
    if (s === S.CUSTOMER_STATUS_FROZEN) await freeze(c.id);
    if (s === S.CUSTOMER_STATUS_CLOSED) await close(c.id);
    return { c, a };
  };
  const apply = (id: string, to: S) =>
    to === S.CUSTOMER_STATUS_FROZEN ? freeze(id) : to === S.CUSTOMER_STATUS_ACTIVE ? unfreeze(id) : close(id);
  const states = [S.CUSTOMER_STATUS_ACTIVE, S.CUSTOMER_STATUS_FROZEN, S.CUSTOMER_STATUS_CLOSED];
  const legal = new Set(
    [
      [S.CUSTOMER_STATUS_ACTIVE, S.CUSTOMER_STATUS_FROZEN],
      [S.CUSTOMER_STATUS_FROZEN, S.CUSTOMER_STATUS_ACTIVE],
      [S.CUSTOMER_STATUS_ACTIVE, S.CUSTOMER_STATUS_CLOSED],
      [S.CUSTOMER_STATUS_FROZEN, S.CUSTOMER_STATUS_CLOSED],
    ].map(([f, to]) => `${f}>${to}`),
  );
  const cases = states.flatMap((from) => states.map((to) => [S[from], S[to], from, to] as const));

  it.each(cases)('%s -> %s', async (_f, _t, from, to) => {
    const { c, a } = await customerAt(from);
    const before = await eventsOf(t.app, c.id);
    if (from === to) {
      const res = await apply(c.id, to);
      expect(res.changed).toBe(false);
      expect(res.customer!.status).toBe(to);
      expect(await eventIds(c.id)).toEqual(before.map((e) => e.id));
    } else if (legal.has(`${from}>${to}`)) {
      const res = await apply(c.id, to);
      expect(res.changed).toBe(true);
      expect(res.customer!.status).toBe(to);
      const events = await eventsOf(t.app, c.id);
      expect(events.length).toBe(before.length + 1);
      expect(events.at(-1)!.subject).toBe(SUBJECTS.statusChanged);
      expect(events.at(-1)!.detail).toMatchObject({ from, to });
    } else {
      const err = await expectRpcError(
        apply(c.id, to),
        status.FAILED_PRECONDITION,
        undefined,
        'ILLEGAL_STATUS_TRANSITION',
      );
      const name = (s: S) => S[s].replace('CUSTOMER_STATUS_', '');
      expect(err.details).toContain(`from ${name(from)} to ${name(to)}`);
      expect(await statusOf(c.id)).toBe(from);
      expect(await eventIds(c.id)).toEqual(before.map((e) => e.id));
    }
    // The accounts follow the customer: closed once closed, otherwise debits blocked exactly while frozen.
    const account = await balances(t.bank, a.id);
    const now = await statusOf(c.id);
    expect(account.closed).toBe(now === S.CUSTOMER_STATUS_CLOSED);
    if (now !== S.CUSTOMER_STATUS_CLOSED) expect(account.debitsBlocked).toBe(now === S.CUSTOMER_STATUS_FROZEN);
  });

  it('freezing blocks debits on the accounts (credits still arrive); unfreezing releases them', async () => {
    const { c, a } = await withAccount(1000n);
    const res = await freeze(c.id, 'suspicious activity');
    expect(res.customer).toMatchObject({ status: S.CUSTOMER_STATUS_FROZEN, statusReason: 'suspicious activity' });
    expect(await drain(a, 10n)).toBe(R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED);
    await fund(t.bank, a, 5n);
    // KYC and risk changes still apply to a frozen customer.
    expect((await t.client.submitKyc({ customerId: c.id })).changed).toBe(true);
    expect(
      (await t.client.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_HIGH, reason: 'frozen' })).changed,
    ).toBe(true);
    await unfreeze(c.id);
    expect(await drain(a, 10n)).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await balances(t.bank, a.id)).creditsPosted).toBe(1005n);
  });

  it('freezes, unfreezes and closes a customer without accounts (the ledger knows no such owner)', async () => {
    const c = await create();
    expect((await freeze(c.id)).changed).toBe(true);
    expect((await unfreeze(c.id)).changed).toBe(true);
    expect((await freeze(c.id)).changed).toBe(true);
    const closed = await close(c.id);
    expect(closed).toMatchObject({ changed: true, accountsClosed: 0, customer: { status: S.CUSTOMER_STATUS_CLOSED } });
    // The ledger answered NOT_FOUND each time and recorded nothing for the owner.
    const shard = t.bank.router.byCustomer(c.id);
    expect(await shard.db('owners').where({ owner_id: c.id }).first()).toBeUndefined();
  });

  it('closing passes ACCOUNT_BALANCE_NOT_ZERO through and records nothing; at zero it closes every account', async () => {
    const { c, a } = await withAccount(300n);
    const [b] = await openAccounts(t.bank, 1, { owner: c.id });
    const before = await eventsOf(t.app, c.id);
    const err = await expectRpcError(close(c.id), status.FAILED_PRECONDITION, undefined, 'ACCOUNT_BALANCE_NOT_ZERO');
    expect(err.details).toContain(a.id);
    expect(await statusOf(c.id)).toBe(S.CUSTOMER_STATUS_ACTIVE);
    expect(await eventIds(c.id)).toEqual(before.map((e) => e.id));
    expect((await balances(t.bank, b!.id)).closed).toBe(false);

    expect(await drain(a, 300n)).toBe(R.TRANSFER_RESULT_CODE_OK);
    const res = await close(c.id, 'moved abroad');
    expect(res).toMatchObject({
      changed: true,
      accountsClosed: 2,
      customer: { status: S.CUSTOMER_STATUS_CLOSED, statusReason: 'moved abroad' },
    });
    for (const x of [a, b!]) expect((await balances(t.bank, x.id)).closed).toBe(true);
    expect((await close(c.id)).changed).toBe(false);
  });

  it('a closed customer takes no further change', async () => {
    const { c } = await customerAt(S.CUSTOMER_STATUS_CLOSED);
    const contact = { email: 'late@example.org', phone: '', address: undefined };
    for (const call of [
      () => t.client.updateContact({ customerId: c.id, contact, updateMask: ['email'], expectedVersion: 0n }),
      () => t.client.submitKyc({ customerId: c.id }),
      () => t.client.decideKyc({ customerId: c.id, decision: K.KYC_STATUS_VERIFIED, reason: '' }),
      () => t.client.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_LOW, reason: '' }),
    ]) {
      await expectRpcError(call(), status.FAILED_PRECONDITION, undefined, 'CUSTOMER_CLOSED');
    }
    expect((await t.client.getCustomer({ customerId: c.id })).customer!.status).toBe(S.CUSTOMER_STATUS_CLOSED);
  });

  describe('when the account service cannot be reached', () => {
    let broken: Awaited<ReturnType<TestCustomers['startTwin']>>;
    beforeAll(async () => {
      broken = await t.startTwin({ ACCOUNT_SERVICE_ADDRESS: `127.0.0.1:${await freePort()}` });
    });

    it('a freeze records nothing (debits are blocked first), and a retry completes it', async () => {
      const { c, a } = await withAccount(100n);
      await expectRpcError(
        broken.client.freezeCustomer({ customerId: c.id, reason: 'x' }),
        status.UNAVAILABLE,
        undefined,
        'DEPENDENCY_UNAVAILABLE',
      );
      expect(await statusOf(c.id)).toBe(S.CUSTOMER_STATUS_ACTIVE);
      expect((await eventsOf(t.app, c.id)).map((e) => e.subject)).toEqual([SUBJECTS.created]);
      expect((await freeze(c.id)).changed).toBe(true);
      expect(await drain(a, 1n)).toBe(R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED);
    });

    it('an unfreeze records ACTIVE but leaves debits blocked (the safe side); a retry unblocks them', async () => {
      const { c, a } = await withAccount(100n);
      await freeze(c.id);
      await expectRpcError(
        broken.client.unfreezeCustomer({ customerId: c.id, reason: 'x' }),
        status.UNAVAILABLE,
        undefined,
        'DEPENDENCY_UNAVAILABLE',
      );
      expect(await statusOf(c.id)).toBe(S.CUSTOMER_STATUS_ACTIVE);
      expect((await balances(t.bank, a.id)).debitsBlocked).toBe(true);
      const retry = await unfreeze(c.id);
      expect(retry.changed).toBe(false); // ACTIVE was already recorded...
      expect((await balances(t.bank, a.id)).debitsBlocked).toBe(false); // ...and now debits flow again
      expect(await drain(a, 1n)).toBe(R.TRANSFER_RESULT_CODE_OK);
      expect((await eventsOf(t.app, c.id)).filter((e) => e.subject === SUBJECTS.statusChanged)).toHaveLength(2);
    });

    it('a close records nothing', async () => {
      const { c, a } = await withAccount();
      await expectRpcError(
        broken.client.closeCustomer({ customerId: c.id, reason: 'x' }),
        status.UNAVAILABLE,
        undefined,
        'DEPENDENCY_UNAVAILABLE',
      );
      expect(await statusOf(c.id)).toBe(S.CUSTOMER_STATUS_ACTIVE);
      expect((await balances(t.bank, a.id)).closed).toBe(false);
    });
  });

  it('passes the caller deadline on to the account service', async () => {
    const { c } = await withAccount();
    await expectRpcError(
      t.client.freezeCustomer({ customerId: c.id, reason: '' }, { deadlineMs: 1 }),
      status.DEADLINE_EXCEEDED,
    );
    // Whatever happened before the deadline, a retry settles the customer consistently (it may
    // find the first call's lease still held for a moment: ABORTED, retry).
    for (let i = 0; ; i++) {
      const r = await freeze(c.id).catch((e: { code: number }) => e);
      if (!('code' in r && r.code === status.ABORTED) || i > 50) break;
      await new Promise((ok) => setTimeout(ok, 20));
    }
    expect(await statusOf(c.id)).toBe(S.CUSTOMER_STATUS_FROZEN);
  });
});
