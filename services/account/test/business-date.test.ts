// The business date (DESIGN.md "The bank's day"): every booking carries the business date of its
// shard, the shards follow the global date, and a move of the date is a clean cut: no booking
// made after the move returns carries the old date, on any shard.
import { randomUUID } from 'node:crypto';
import { readShardBusinessDate } from '@corebank/kit';
import { BusinessDayServiceClient } from '@corebank/kit/gen/corebank/v1/day';
import { ALL_SCOPES, promisify, testChannelCredentials, testToken } from '@corebank/kit/testing';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { cashAccount, openAccounts, R, transfer } from './helpers.js';

describe('the business date', () => {
  let bank: TestBank;
  let day: ReturnType<typeof promisify<BusinessDayServiceClient>>;

  beforeAll(async () => {
    bank = await startBank(3);
    day = promisify(new BusinessDayServiceClient(bank.address, testChannelCredentials(bank.env)), await testToken());
  });
  afterAll(async () => {
    day?.close();
    await bank?.stop();
  });

  it('is set through the API and every shard follows it; bookings carry it', async () => {
    await day.setBusinessDate({ businessDate: '2030-03-01', force: true, idempotencyKey: randomUUID() });
    expect((await day.getBusinessDate({})).businessDate).toBe('2030-03-01');
    for (const s of bank.router.shards) expect(await readShardBusinessDate(s.db)).toBe('2030-03-01');

    const [a, b] = await openAccounts(bank, 2, { constrained: false, owner: 'cust-one-owner' });
    const res = await bank.client.createTransfers({
      transfers: [transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 5n })],
    });
    expect(res.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect(res.results[0]!.transfer!.businessDate).toBe('2030-03-01');
    const got = await bank.client.getTransfer({ transferId: res.results[0]!.id, accountId: '' });
    expect(got.transfer!.businessDate).toBe('2030-03-01');
  });

  it('refuses to go back, or to skip days, without force; names the field on a bad date', async () => {
    await day.setBusinessDate({ businessDate: '2030-04-01', force: true, idempotencyKey: randomUUID() });
    await expect(
      day.setBusinessDate({ businessDate: '2030-03-31', force: false, idempotencyKey: randomUUID() }),
    ).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
    });
    await expect(
      day.setBusinessDate({ businessDate: '2030-02-30', force: true, idempotencyKey: randomUUID() }),
    ).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('business_date'),
    });
    // A bank that never closed a day may move its date forward (its first day).
    await day.setBusinessDate({ businessDate: '2030-04-02', force: false, idempotencyKey: randomUUID() });
    expect((await day.getBusinessDate({})).businessDate).toBe('2030-04-02');
  });

  it('takes an idempotency key: required, and refused with another request', async () => {
    await expect(
      day.setBusinessDate({ businessDate: '2030-04-03', force: true, idempotencyKey: '' }),
    ).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('idempotency_key'),
    });
    const key = randomUUID();
    await day.setBusinessDate({ businessDate: '2030-04-03', force: true, idempotencyKey: key });
    // The same request again answers alike; another under the same key is refused.
    expect(await day.setBusinessDate({ businessDate: '2030-04-03', force: true, idempotencyKey: key })).toEqual({
      businessDate: '2030-04-03',
    });
    await expect(
      day.setBusinessDate({ businessDate: '2030-04-04', force: true, idempotencyKey: key }),
    ).rejects.toMatchObject({
      code: status.ALREADY_EXISTS,
    });
    expect((await day.getBusinessDate({})).businessDate).toBe('2030-04-03');
  });

  it('lets only the close of business date a booking, and only to the day being closed', async () => {
    await day.setBusinessDate({ businessDate: '2030-04-20', force: true, idempotencyKey: randomUUID() });
    const [a, b] = await openAccounts(bank, 2, { constrained: false, owner: 'cust-backdated' });
    const dated = (businessDate: string) =>
      transfer({ debitAccountId: a!.id, creditAccountId: b!.id, amount: 3n, businessDate });
    // A channel (no ledger:close) may not date a booking at all.
    await expect(bank.client.createTransfers({ transfers: [dated('2030-04-19')] })).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
    });
    const cob = promisify(
      new AccountServiceClient(bank.address, testChannelCredentials(bank.env)),
      await testToken([...ALL_SCOPES, 'ledger:close']),
    );
    try {
      const res = await cob.createTransfers({
        transfers: [dated('2030-04-19'), dated('2030-04-20'), dated('2030-04-18'), dated('2030-04-21')],
      });
      expect(res.results.map((r) => [r.code, r.transfer?.businessDate ?? ''])).toEqual([
        [R.TRANSFER_RESULT_CODE_OK, '2030-04-19'],
        [R.TRANSFER_RESULT_CODE_OK, '2030-04-20'],
        [R.TRANSFER_RESULT_CODE_BUSINESS_DATE_CLOSED, ''],
        [R.TRANSFER_RESULT_CODE_BUSINESS_DATE_CLOSED, ''],
      ]);
      // Once the general-ledger step has closed the eve on a shard, nothing more is dated to it.
      const shard = bank.router.shards[a!.shard]!;
      await shard.db.raw(`insert into ledger_closed_days (business_date) values ('2030-04-19')`);
      const late = await cob.createTransfers({ transfers: [dated('2030-04-19')] });
      expect(late.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_BUSINESS_DATE_CLOSED);
      expect(late.results[0]!.field).toBe('transfers[0].business_date');
      // Not a final refusal: nothing recorded under the id.
      const { rows } = (await shard.db.raw(`select count(*)::int as n from transfer_rejections where id = ?`, [
        late.results[0]!.id,
      ])) as { rows: { n: number }[] };
      expect(rows[0]!.n).toBe(0);
    } finally {
      cob.close();
    }
  });

  it('moves as a clean cut while transfers are in flight on every shard', async () => {
    await day.setBusinessDate({ businessDate: '2030-05-01', force: true, idempotencyKey: randomUUID() });
    const accounts = await Promise.all(bank.router.shards.map((s) => cashAccount(bank, s.index)));
    const payees = await Promise.all(
      bank.router.shards.map(async (s) => {
        // An account on shard s: owners hash to shards, so open until one lands there.
        for (;;) {
          const [acc] = await openAccounts(bank, 1, { constrained: false });
          if (acc!.shard === s.index) return acc!;
        }
      }),
    );
    let stop = false;
    const booked: { date: string; startedAfterMove: boolean }[] = [];
    let moved = false;
    const load = bank.router.shards.map(async (s) => {
      while (!stop) {
        const startedAfterMove = moved;
        const res = await bank.client.createTransfers({
          transfers: [
            transfer({ debitAccountId: accounts[s.index]!.id, creditAccountId: payees[s.index]!.id, amount: 1n }),
          ],
        });
        booked.push({ date: res.results[0]!.transfer!.businessDate!, startedAfterMove });
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    await day.setBusinessDate({ businessDate: '2030-05-02', force: false, idempotencyKey: randomUUID() });
    moved = true;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(load);

    expect(booked.filter((b) => b.date === '2030-05-01').length).toBeGreaterThan(0);
    expect(booked.filter((b) => b.date === '2030-05-02').length).toBeGreaterThan(0);
    // Every transfer sent after the move returned carries the new date.
    expect(booked.filter((b) => b.startedAfterMove && b.date !== '2030-05-02')).toEqual([]);
    // And the journal agrees: on each shard, no row of the old day is newer than a row of the new.
    for (const s of bank.router.shards) {
      const { rows } = (await s.db.raw(
        `select max(created_at) filter (where business_date = '2030-05-01') as last_old,
                min(created_at) filter (where business_date = '2030-05-02') as first_new
           from transfers`,
      )) as { rows: { last_old: Date; first_new: Date }[] };
      expect(rows[0]!.last_old.getTime()).toBeLessThanOrEqual(rows[0]!.first_new.getTime());
    }
  });
});
