// The payment runs' pieces shared by `npm run bench` (bench.ts) and `npm run bench:cob --payments`
// (cob.ts): the customers k6 pays between (opened and funded through the account service, written
// to the fixture file the scripts read), the payment service's bench settings, k6's token, the
// figures of a payments.js run, and the gate that starts and stops an open-ended run (cob.ts runs
// payments for as long as the close of business takes, which no k6 duration can say in advance).
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { audienceOf, mintToken } from '@corebank/kit';
import {
  CreateAccountResultCode,
  SystemAccountKind,
  TransferKind,
  TransferResultCode,
  type Account,
  type AccountServiceClient,
  type Transfer,
} from '@corebank/kit/gen/corebank/v1/account';
import type { promisify } from '@corebank/kit/testing';
import type { K6Run } from './k6.js';
import { metricsOf } from './services.js';

type Accounts = ReturnType<typeof promisify<AccountServiceClient>>;

/** What k6 gets: a channel token for the ledger and the payment service, without ledger:admin. */
export function mintK6Token(issuer: Parameters<typeof mintToken>[0]): Promise<string> {
  return mintToken(issuer, {
    channel: 'bench-k6',
    scopes: ['accounts:read', 'accounts:write', 'transfers:write', 'payments:read', 'payments:write'],
    audience: [audienceOf('account'), audienceOf('payment')],
    ttlSeconds: 6 * 3600,
  });
}

/**
 * The payment service's settings for a run: `admission` calls in flight (writes may use 80% of
 * them, the rest is kept for reads); no channel rate limits; the velocity limits raised for the
 * corporate payer of payments-hot-payer (its thousands of orders an hour would be refused as
 * RISK_VELOCITY_*). Every other rule (tier thresholds, new payee, daily limits) stays as
 * `npm run up` sets it.
 */
export function paymentServiceEnv(admission: number): Record<string, string> {
  return {
    ADMISSION_MAX_IN_FLIGHT: String(admission),
    ADMISSION_READ_RESERVE_PERCENT: '20',
    CHANNEL_RATE_LIMITS: '',
    RISK_VELOCITY_MAX_PAYMENTS: '1000000',
    RISK_VELOCITY_MAX_AMOUNT: '1000000000000',
  };
}

const newTransfer = (p: Pick<Transfer, 'debitAccountId' | 'creditAccountId' | 'amount' | 'reference'>): Transfer => ({
  id: randomUUID(),
  kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
  linked: false,
  pendingId: '',
  timeoutSeconds: 0,
  code: 1,
  currency: '',
  ...p,
});

async function openAccounts(client: Accounts, owners: string[]): Promise<Account[]> {
  const out: Account[] = [];
  for (let i = 0; i < owners.length; i += 1000) {
    const res = await client.createAccounts(
      {
        accounts: owners.slice(i, i + 1000).map((ownerId) => ({
          idempotencyKey: 'current-eur',
          ownerId,
          currency: 'EUR',
          code: 100,
          flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
          overdraftLimit: 0n,
          reference: 'bench customer',
        })),
      },
      { deadlineMs: 120_000 },
    );
    for (const r of res.results) {
      if (r.code !== CreateAccountResultCode.CREATE_ACCOUNT_RESULT_CODE_OK)
        throw new Error(`opening an account: ${r.code}`);
      out.push(r.account!);
    }
  }
  return out;
}

export interface AccountFixture {
  /** The JSON file the scripts read (FIXTURE): account ids sorted by shard, each shard's range and cash account. */
  path: string;
  /** Customer accounts opened (each funded). */
  customers: number;
  /** Accounts the harness opened: the customers, the merchant and the corporate account. */
  accounts: number;
  /** Funding transfers the harness booked itself (not k6's). */
  funding: number;
  /** Customers per shard. */
  perShard: number[];
}

/**
 * Opens `customers` current accounts (owners bench-customer-<i>, spread over the shards by owner),
 * each funded with EUR 10,000.00 from its shard's cash account, plus one merchant account (the hot
 * payee and the hot account) and one corporate account (the hot payer: payroll, refunds,
 * marketplace payouts) funded with EUR 10,000,000.00, and writes the fixture to `dir`/fixture.json.
 */
export async function loadAccountFixture(
  client: Accounts,
  o: { customers: number; shards: number; dir: string },
): Promise<AccountFixture> {
  const customers = await openAccounts(
    client,
    Array.from({ length: o.customers }, (_, i) => `bench-customer-${i}`),
  );
  const [merchant] = await openAccounts(client, ['bench-merchant']);
  const [corporate] = await openAccounts(client, ['bench-corporate']);
  const cash = new Map<number, string>();
  for (const s of (await client.listSystemAccounts({})).accounts) {
    if (s.kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_CASH && s.account!.currency === 'EUR')
      cash.set(s.account!.shard, s.account!.id);
  }
  const fund = (a: Account, amount: bigint) =>
    newTransfer({ debitAccountId: cash.get(a.shard)!, creditAccountId: a.id, amount, reference: 'bench funding' });
  const all = [...customers.map((a) => fund(a, 1_000_000n)), fund(corporate!, 1_000_000_000n)];
  let funding = 0;
  for (let i = 0; i < all.length; i += 4000) {
    const res = await client.createTransfers({ transfers: all.slice(i, i + 4000) }, { deadlineMs: 120_000 });
    for (const r of res.results) {
      if (r.code !== TransferResultCode.TRANSFER_RESULT_CODE_OK)
        throw new Error(`funding: transfer ${r.id} got ${r.code}`);
      funding++;
    }
  }

  const byShard = Array.from({ length: o.shards }, (_, i) => customers.filter((a) => a.shard === i).map((a) => a.id));
  const fixture = {
    accounts: byShard.flat(),
    shards: byShard.map((ids, index) => {
      const start = byShard.slice(0, index).reduce((n, s) => n + s.length, 0);
      return { index, start, end: start + ids.length, cash: cash.get(index)! };
    }),
    hot: { shard: merchant!.shard, account: merchant!.id },
    corporate: { shard: corporate!.shard, account: corporate!.id },
  };
  for (const s of fixture.shards)
    if (s.end - s.start < 2) throw new Error(`shard ${s.index} has fewer than 2 accounts: use more accounts`);
  const path = join(o.dir, 'fixture.json');
  writeFileSync(path, JSON.stringify(fixture));
  return {
    path,
    customers: customers.length,
    accounts: customers.length + 2,
    funding,
    perShard: byShard.map((s) => s.length),
  };
}

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
}

/** The figures of a payments.js run (its summary): orders accepted per second, admitted latency, counts. */
export function paymentFigures(run: K6Run): {
  accepted: number;
  rate: number;
  latency: Latency;
  extra: Record<string, number>;
} {
  const val = run.value;
  const accepted = val('payments_accepted', 'count');
  const trend = 'payment_admitted_ms';
  return {
    accepted,
    rate: Math.round(accepted / run.seconds),
    latency: { p50: val(trend, 'med'), p95: val(trend, 'p(95)'), p99: val(trend, 'p(99)') },
    extra: {
      accepted,
      same: val('payments_accepted{route:same}', 'count'),
      cross: val('payments_accepted{route:cross}', 'count'),
      refused: val('payments_refused', 'count'),
      shedOrders: val('payments_shed', 'count'),
      shedCalls: val('payment_shed_calls', 'count'),
      shedOverloaded: val('payment_shed_calls{reason:OVERLOADED}', 'count'),
      shedRateLimited: val('payment_shed_calls{reason:RATE_LIMITED}', 'count'),
      unknown: val('payments_unknown', 'count'),
      retries: val('payment_retries', 'count'),
      iterations: val('iterations', 'count'),
    },
  };
}

export type GateState = 'wait' | 'go' | 'stop';

export interface PaymentGate {
  /** What the scripts read at GATE_URL (lib/bank.js gate()). */
  url: string;
  set(state: GateState): void;
  /** Resolves once a script has asked (k6 is up and its VUs iterate). */
  asked: Promise<void>;
  close(): Promise<void>;
}

/**
 * A local HTTP endpoint that says whether a script's iterations should pay yet: `wait` (k6 is
 * starting), `go`, `stop` (every iteration from then on does nothing, so k6 can be stopped once
 * the orders in flight are answered, and what it counted accepted is every order it sent).
 */
export async function startPaymentGate(): Promise<PaymentGate> {
  let state: GateState = 'wait';
  let asked!: () => void;
  const first = new Promise<void>((r) => (asked = r));
  const server = createServer((_req, res) => {
    asked();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(state);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    set: (s) => (state = s),
    asked: first,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** CreatePayment calls the payment service has answered, and those it is serving now (its metrics). */
async function createPaymentCalls(metricsPort: number): Promise<{ answered: number; inFlight: number }> {
  let answered = 0;
  let inFlight = 0;
  for (const line of (await metricsOf(metricsPort)).split('\n')) {
    const m = /^(grpc_server_requests_total|grpc_in_flight_requests)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'grpc_in_flight_requests') inFlight += Number(m[3]);
    else if (/method="CreatePayment"/.test(m[2]!)) answered += Number(m[3]);
  }
  return { answered, inFlight };
}

/**
 * After the gate said stop: waits until the payment service has answered no CreatePayment for
 * `quietMs` and serves none (every order k6 sent has its answer, retries included), at most
 * timeoutMs. Returns whether it got quiet.
 */
export async function waitPaymentsQuiet(metricsPort: number, quietMs = 1500, timeoutMs = 60_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  let last = await createPaymentCalls(metricsPort);
  let since = Date.now();
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await createPaymentCalls(metricsPort);
    if (now.answered !== last.answered || now.inFlight > 0) since = Date.now();
    else if (Date.now() - since >= quietMs) return true;
    last = now;
  }
  return false;
}
