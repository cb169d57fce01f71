// What every payment test under load proves once the sagas settled: the ledger balances, the
// in-transit accounts net to zero, every order's final state is what the ledger shows (each
// payment applied once or not at all), and no constrained balance ever went below zero.
import { PaymentKind, PaymentRoute, PaymentStatus as S, PaymentStep as P } from '@corebank/kit/gen/corebank/v1/payment';
import { SystemAccountKind, type Account } from '@corebank/kit/gen/corebank/v1/account';
import { expect } from 'vitest';
import type { Bank } from '../../account/test/bank.js';
import type { PaymentRow } from '../src/proto.js';
import type { ShardRouter } from '@corebank/kit';

const MOVED = [
  S.PAYMENT_STATUS_COMPLETED,
  S.PAYMENT_STATUS_PARTIALLY_REFUNDED,
  S.PAYMENT_STATUS_REFUNDED,
  S.PAYMENT_STATUS_REVERSED,
];

/** Every order of every payment shard. */
export async function allOrders(router: ShardRouter): Promise<PaymentRow[]> {
  const rows = await Promise.all(router.shards.map((s) => s.db('payments').select('*')));
  return rows.flat() as PaymentRow[];
}

export async function unsettledCount(router: ShardRouter): Promise<number> {
  let n = 0;
  for (const s of router.shards) {
    const r = (await s.db('payments').whereNot('step', P.PAYMENT_STEP_DONE).count('* as n').first()) as unknown as {
      n: bigint;
    };
    n += Number(r.n);
  }
  return n;
}

export interface Funded {
  account: Account;
  funding: bigint;
}

export async function checkInvariants(bank: Bank, orders: PaymentRow[], funded: Funded[]): Promise<void> {
  // 1. Debits equal credits per currency, per shard and globally; no constraint broken.
  const inv = await bank.client.checkLedgerInvariant({});
  expect(inv.ok).toBe(true);
  expect(inv.constraintViolations).toBe(0n);

  // 2. The in-transit accounts net to zero once every saga settled, with nothing pending.
  const { accounts } = await bank.client.listSystemAccounts({});
  const inTransit = accounts.filter((s) => s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_IN_TRANSIT);
  for (const currency of new Set(inTransit.map((s) => s.account!.currency))) {
    let net = 0n;
    for (const s of inTransit.filter((x) => x.account!.currency === currency)) {
      const a = (await bank.client.getAccount({ accountId: s.account!.id })).account!;
      expect([a.debitsPending, a.creditsPending]).toEqual([0n, 0n]);
      net += a.creditsPosted - a.debitsPosted;
    }
    expect(net, `in-transit ${currency}`).toBe(0n);
  }

  // 3. Every order settled, and the journal holds exactly the transfers its final state implies.
  const byPayment = new Map<string, string[]>();
  for (const s of bank.router.shards) {
    const { rows } = await s.db.raw(
      `select reference, kind from transfers where reference like 'payment:%' order by created_at`,
    );
    for (const r of rows as { reference: string; kind: number }[]) {
      const id = r.reference.slice('payment:'.length);
      byPayment.set(id, [...(byPayment.get(id) ?? []), String(r.kind)]);
    }
  }
  const counts = { completed: 0, rejectedAtHold: 0, voided: 0 };
  // Orders whose own money moved: completed, and possibly refunded since (by orders of their own).
  const moved = (o: PaymentRow) => MOVED.includes(o.status);
  for (const o of orders) {
    expect(o.step, `payment ${o.id} settled`).toBe(P.PAYMENT_STEP_DONE);
    const kinds = (byPayment.get(o.id) ?? []).sort().join(',');
    // A same-shard payment is one transfer; a cross-shard one, and every escrow, holds first.
    if (o.route === PaymentRoute.PAYMENT_ROUTE_SAME_SHARD && o.kind !== PaymentKind.PAYMENT_KIND_ESCROW) {
      expect(kinds).toBe(moved(o) ? '1' : '');
      continue;
    }
    if (moved(o)) {
      counts.completed++;
      expect(kinds, `payment ${o.id}`).toBe('1,2,3'); // credit, hold, post
    } else {
      expect(o.status).toBe(S.PAYMENT_STATUS_REJECTED);
      if (kinds === '') counts.rejectedAtHold++;
      else {
        counts.voided++;
        expect(kinds, `payment ${o.id}`).toBe('2,4'); // hold, void
      }
    }
  }
  expect(byPayment.size).toBe(orders.filter((o) => (byPayment.get(o.id) ?? []).length > 0).length);

  // 4. Every customer account moved by exactly its completed payments.
  const debits = new Map<string, bigint>();
  const credits = new Map<string, bigint>();
  for (const o of orders.filter(moved)) {
    debits.set(o.payer_account_id, (debits.get(o.payer_account_id) ?? 0n) + o.amount);
    credits.set(o.payee_account_id, (credits.get(o.payee_account_id) ?? 0n) + o.amount);
  }
  for (const { account, funding } of funded) {
    const a = (await bank.client.getAccount({ accountId: account.id })).account!;
    expect(a.debitsPending, account.id).toBe(0n);
    expect(a.debitsPosted, account.id).toBe(debits.get(account.id) ?? 0n);
    expect(a.creditsPosted, account.id).toBe(funding + (credits.get(account.id) ?? 0n));
  }

  // 5. No constrained balance was ever negative, counting holds: checked after every journal entry.
  for (const s of bank.router.shards) {
    const { rows } = await s.db.raw(
      `select count(*) as n from entries e join accounts a on a.id = e.account_id
        where a.debits_must_not_exceed_credits
          and e.credits_posted - e.debits_posted - e.debits_pending + a.overdraft_limit < 0`,
    );
    expect(Number((rows as { n: bigint }[])[0]!.n)).toBe(0);
  }
  return void counts;
}

export async function outcomeCounts(orders: PaymentRow[]) {
  return {
    completed: orders.filter((o) => o.status === S.PAYMENT_STATUS_COMPLETED).length,
    rejected: orders.filter((o) => o.status === S.PAYMENT_STATUS_REJECTED).length,
    voided: orders.filter((o) => o.reason === 'TRANSFER_RESULT_CODE_CREDIT_ACCOUNT_NOT_FOUND').length,
  };
}
