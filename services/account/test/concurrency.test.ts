// 32 concurrent clients, 10,000+ random transfers (plain, pending/post/void, linked) among 200
// accounts on 3 shards, some constrained, some ids deliberately retried. Afterwards: debits equal
// credits per currency on every shard, no constrained balance negative, every accepted transfer
// exactly once in the journal and exactly once on JetStream, every retry got its original result.
import { randomUUID } from 'node:crypto';
import { TransferPosted } from '@corebank/kit/gen/corebank/v1/events';
import type { Account, Transfer, TransferResult } from '@corebank/kit/gen/corebank/v1/account';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { fund, K, openAccounts, R, transfer } from './helpers.js';
import { outboxDrained, readStream } from './stream.js';

const CLIENTS = 32;
const TARGET_TRANSFERS = 10_000;
const ACCOUNTS = 200;

describe('ledger under concurrency on 3 shards', () => {
  let bank: TestBank;
  beforeAll(async () => {
    bank = await startBank(3);
  });
  afterAll(async () => bank?.stop());

  it('conserves money and applies every transfer exactly once', async () => {
    // 100 customers with two accounts each; every other account constrained.
    const accounts: Account[] = [];
    for (let c = 0; c < ACCOUNTS / 2; c++) {
      const owner = `load-${randomUUID()}`;
      accounts.push(...(await openAccounts(bank, 1, { owner, constrained: true })));
      accounts.push(...(await openAccounts(bank, 1, { owner, constrained: false })));
    }
    for (const a of accounts) await fund(bank, a, 5_000n);
    const byShard = new Map<number, Account[]>();
    for (const a of accounts) byShard.set(a.shard, [...(byShard.get(a.shard) ?? []), a]);
    expect(byShard.size).toBe(3);

    const rnd = (n: number) => Math.floor(Math.random() * n);
    const pick = () => {
      const shardAccounts = [...byShard.values()][rnd(byShard.size)]!;
      const d = shardAccounts[rnd(shardAccounts.length)]!;
      let c = shardAccounts[rnd(shardAccounts.length)]!;
      while (c.id === d.id) c = shardAccounts[rnd(shardAccounts.length)]!;
      return { debitAccountId: d.id, creditAccountId: c.id };
    };

    const accepted = new Set<string>();
    const firstResult = new Map<string, TransferResult>();
    let retried = 0;
    let sent = 0;
    const openPendings: Transfer[] = [];

    const record = (results: TransferResult[]) => {
      for (const r of results) {
        if (!firstResult.has(r.id)) firstResult.set(r.id, r);
        if (r.code === R.TRANSFER_RESULT_CODE_OK && !r.replayed) {
          expect(accepted.has(r.id), `accepted twice: ${r.id}`).toBe(false);
          accepted.add(r.id);
        }
      }
    };

    const started = Date.now();
    const client = async () => {
      while (sent < TARGET_TRANSFERS) {
        const batch: Transfer[] = [];
        const roll = Math.random();
        if (roll < 0.15 && openPendings.length) {
          const p = openPendings.splice(rnd(openPendings.length), 1)[0]!;
          const post = Math.random() < 0.6;
          batch.push(
            transfer({
              debitAccountId: p.debitAccountId,
              creditAccountId: p.creditAccountId,
              kind: post ? K.TRANSFER_KIND_POST_PENDING : K.TRANSFER_KIND_VOID_PENDING,
              pendingId: p.id,
              amount: post && Math.random() < 0.5 ? p.amount / 2n : 0n,
            }),
          );
        } else if (roll < 0.35) {
          const t = transfer({ ...pick(), amount: BigInt(1 + rnd(400)), kind: K.TRANSFER_KIND_PENDING });
          batch.push(t);
          openPendings.push(t);
        } else if (roll < 0.5) {
          const len = 2 + rnd(2);
          const { debitAccountId, creditAccountId } = pick();
          for (let i = 0; i < len; i++) {
            batch.push(
              transfer({ debitAccountId, creditAccountId, amount: BigInt(1 + rnd(2000)), linked: i < len - 1 }),
            );
          }
        } else {
          for (let i = 0; i < 1 + rnd(8); i++) batch.push(transfer({ ...pick(), amount: BigInt(1 + rnd(3000)) }));
        }
        sent += batch.length;
        const res = await bank.client.createTransfers({ transfers: batch });
        record(res.results);
        // Deliberate retries of the same request: every id must get its original result.
        if (Math.random() < 0.1) {
          retried += batch.length;
          const again = await bank.client.createTransfers({ transfers: batch });
          again.results.forEach((r, i) => {
            const orig = res.results[i]!;
            expect(r.code).toBe(orig.code);
            if (orig.code === R.TRANSFER_RESULT_CODE_OK) {
              expect(r.replayed).toBe(true);
              expect(r.transfer).toEqual(orig.transfer);
            }
          });
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `concurrency: ${sent} transfers from ${CLIENTS} clients in ${Math.round(seconds * 10) / 10} s (${Math.round(sent / seconds)} transfers/s); ` +
        `${accepted.size} accepted, ${retried} retried`,
    );
    expect(sent).toBeGreaterThanOrEqual(TARGET_TRANSFERS);
    expect(retried).toBeGreaterThan(0);
    const codes = new Set([...firstResult.values()].map((r) => r.code));
    expect(codes).toContain(R.TRANSFER_RESULT_CODE_OK);

    // Ledger invariant on every shard and globally; no constrained balance below zero.
    const inv = await bank.client.checkLedgerInvariant({});
    expect(inv.ok).toBe(true);
    expect(inv.constraintViolations).toBe(0n);
    for (const a of accounts.filter((x) => x.flags?.debitsMustNotExceedCredits)) {
      const b = (await bank.client.getAccount({ accountId: a.id })).account!;
      expect(b.creditsPosted - b.debitsPosted - b.debitsPending).toBeGreaterThanOrEqual(0n);
    }

    // Every accepted id exactly once in the journal (and nothing else from the load in it).
    const ids = [...accepted];
    let journal = 0;
    for (const s of bank.app.router.shards) {
      const { rows } = await s.db.raw('select count(*) as n from transfers where id = any(?::uuid[])', [ids]);
      journal += Number(rows[0].n);
    }
    expect(journal).toBe(accepted.size);

    // Exactly once on JetStream, once the relay has caught up.
    await expect.poll(() => outboxDrained(bank.app.router.shards), { timeout: 60_000, interval: 250 }).toBe(true);
    const seen = new Map<string, number>();
    for (const m of await readStream(bank.app.nats)) {
      if (m.subject === 'corebank.account.account_opened') continue;
      const id = TransferPosted.decode(m.data).transfer?.id;
      if (id && accepted.has(id)) seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    expect(seen.size).toBe(accepted.size);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });
});
