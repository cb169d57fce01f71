// Events reach JetStream exactly once from the consumer's point of view, even when the relay is
// killed (SIGKILL) and restarted mid-stream: every outbox row is in the stream once (the
// duplicate window drops re-sends), and an inbox consumer applies each event once.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { processOnce } from '@corebank/kit';
import { PendingStatus } from '@corebank/kit/gen/corebank/v1/account';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type TestBank } from './bank.js';
import { fund, K, openAccounts, R, transfer } from './helpers.js';
import { outboxDrained, readStream } from './stream.js';

function startRelay(env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'services/account/src/command.ts', 'relay'],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

describe('events through the outbox', () => {
  let bank: TestBank;
  let relay: ChildProcess | undefined;
  beforeAll(async () => {
    bank = await startBank(3, { RELAY_ENABLED: 'false' });
  });
  afterAll(async () => {
    if (relay) await killed(relay);
    await bank?.stop();
  });

  it('publishes every event exactly once although the relay is killed five times', async () => {
    relay = startRelay(bank.env);
    const owners = Array.from({ length: 6 }, () => `ev-${randomUUID()}`);
    const accounts = (await Promise.all(owners.map((owner) => openAccounts(bank, 2, { owner })))).flat();
    for (const a of accounts) await fund(bank, a, 1_000_000n);

    // One of each kind of ledger event.
    const [a, b] = [accounts[0]!, accounts[1]!];
    const p1 = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 10n, kind: K.TRANSFER_KIND_PENDING });
    const p2 = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 10n, kind: K.TRANSFER_KIND_PENDING });
    const p3 = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      amount: 10n,
      kind: K.TRANSFER_KIND_PENDING,
      timeoutSeconds: 1,
    });
    await bank.client.createTransfers({ transfers: [p1, p2, p3] });
    const post = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      kind: K.TRANSFER_KIND_POST_PENDING,
      pendingId: p1.id,
    });
    const voided = transfer({
      debitAccountId: a.id,
      creditAccountId: b.id,
      kind: K.TRANSFER_KIND_VOID_PENDING,
      pendingId: p2.id,
    });
    expect((await bank.client.createTransfers({ transfers: [post, voided] })).results.map((r) => r.code)).toEqual([
      R.TRANSFER_RESULT_CODE_OK,
      R.TRANSFER_RESULT_CODE_OK,
    ]);
    await bank.client.setOwnerDebitsBlocked({ ownerId: owners[5]!, blocked: true });

    // A stream of transfers while the relay is killed and restarted at random moments.
    let kills = 0;
    const chaos = (async () => {
      while (kills < 5) {
        await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
        await killed(relay!);
        kills++;
        relay = startRelay(bank.env);
      }
    })();
    const pairs = owners.slice(0, 5).map((_, i) => [accounts[2 * i]!, accounts[2 * i + 1]!] as const);
    let sent = 0;
    while (kills < 5 || sent < 2000) {
      const batch = Array.from({ length: 40 }, () => {
        const [d, c] = pairs[Math.floor(Math.random() * pairs.length)]!;
        return transfer({ debitAccountId: d.id, creditAccountId: c.id, amount: 1n });
      });
      await bank.client.createTransfers({ transfers: batch });
      sent += batch.length;
    }
    await chaos;
    await expect
      .poll(async () => (await bank.client.getTransfer({ transferId: p3.id })).pendingStatus, { timeout: 10_000 })
      .toBe(PendingStatus.PENDING_STATUS_EXPIRED);
    await expect.poll(() => outboxDrained(bank.app.router.shards), { timeout: 60_000, interval: 250 }).toBe(true);

    const outbox = new Map<string, string>();
    for (const s of bank.app.router.shards) {
      const { rows } = await s.db.raw('select id, subject from outbox');
      for (const r of rows as { id: string; subject: string }[]) outbox.set(r.id, r.subject);
    }
    const stream = (await readStream(bank.app.nats)).filter((m) => outbox.has(m.msgId));
    const perId = new Map<string, number>();
    for (const m of stream) {
      perId.set(m.msgId, (perId.get(m.msgId) ?? 0) + 1);
      expect(m.subject).toBe(outbox.get(m.msgId));
    }
    expect(perId.size).toBe(outbox.size);
    expect([...perId.values()].every((n) => n === 1)).toBe(true);
    const subjects = new Set(stream.map((m) => m.subject));
    for (const event of [
      'account_opened',
      'account_updated',
      'transfer_posted',
      'transfer_pending',
      'pending_posted',
      'pending_voided',
      'pending_expired',
    ]) {
      expect(subjects).toContain(`corebank.account.${event}`);
    }

    // The crash that matters, made certain: rows published but never marked sent are re-sent,
    // and the stream's duplicate window drops them.
    const shard0 = bank.app.router.shards[0]!;
    await shard0.db.raw(
      'update outbox set sent_at = null where seq in (select seq from outbox order by seq limit 100)',
    );
    await expect.poll(() => outboxDrained(bank.app.router.shards), { timeout: 30_000, interval: 250 }).toBe(true);
    const after = (await readStream(bank.app.nats)).filter((m) => outbox.has(m.msgId));
    expect(after.length).toBe(stream.length);

    // An idempotent consumer: delivering everything twice applies each event once.
    const db = bank.app.router.shards[0]!.db;
    await db.raw('create table if not exists consumed (event_id uuid primary key)');
    for (const round of [1, 2]) {
      let applied = 0;
      for (const m of stream) {
        const did = await processOnce(db, 'events-test', m.msgId, async (tx) => {
          await tx.raw('insert into consumed (event_id) values (?)', [m.msgId]);
        });
        if (did) applied++;
      }
      expect(applied).toBe(round === 1 ? stream.length : 0);
    }
  });
});
