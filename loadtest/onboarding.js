// Onboarding burst: a marketing campaign opens accounts in a burst (CreateAccounts for fresh
// owner ids, each funded from its shard's cash account), then the new customers start paying
// existing customers on their shard. (Customers will come from the customer service; for now
// accounts are opened directly.)
//   OPEN_RATE (account batches/s in the burst, default 20), BATCH (accounts per batch, default 10),
//   BURST (s, default 10), PAY_RATE (payments/s after the burst, default 200), DURATION (s of
//   paying, default 20), VUS (default 64)
import exec from 'k6/execution';
import {
  call,
  createTransfers,
  accountsOpened,
  meta,
  ids,
  num,
  randInt,
  summary,
  summaryTrendStats,
  thresholds,
  transfer,
  vus,
} from './lib/bank.js';

const openRate = num('OPEN_RATE', 20);
const batch = num('BATCH', 10);
const burst = num('BURST', 10);
const payRate = num('PAY_RATE', 200);
const pay = num('DURATION', 20);
const FUNDING = 1_000_000; // EUR 10,000.00 each

export const options = {
  scenarios: {
    onboarding: {
      executor: 'ramping-arrival-rate',
      startRate: openRate,
      timeUnit: '1s',
      preAllocatedVUs: vus(),
      maxVUs: vus(),
      stages: [
        { duration: `${burst}s`, target: openRate },
        { duration: '1s', target: payRate },
        { duration: `${pay}s`, target: payRate },
      ],
    },
  },
  thresholds: thresholds({ 'grpc_req_duration{op:open}': [`p(99)<${num('OPEN_P99_MS', 500)}`] }),
  summaryTrendStats,
};

// Accounts this VU opened: [{ id, shard }].
const mine = [];
let seq = 0;

function uid() {
  return `${exec.vu.idInTest}-${++seq}-${Math.random().toString(36).slice(2, 10)}`;
}

function openBatch() {
  const accounts = Array.from({ length: batch }, () => ({
    idempotency_key: 'current-eur',
    owner_id: `onboard-${uid()}`,
    currency: 'EUR',
    code: 100,
    flags: { debits_must_not_exceed_credits: true },
    overdraft_limit: '0',
    reference: 'bench onboarding',
  }));
  const { res } = call('CreateAccounts', { accounts }, 'open', { retry: true });
  if (!res) return;
  const opened = res.message.results
    .filter((r) => r.code === 'CREATE_ACCOUNT_RESULT_CODE_OK' || r.code === 1)
    .map((r) => ({ id: r.account.id, shard: r.account.shard }));
  // A retry after a lost reply replays what the first try opened: each is counted once here.
  accountsOpened.add(opened.length);
  // The opening deposit, from the cash account of each account's shard (one call for the batch).
  const ok = createTransfers(
    opened.map((a) => transfer(meta.shards[a.shard].cash, a.id, FUNDING, 'bench opening deposit')),
    'fund',
  );
  if (ok === opened.length) mine.push(...opened);
}

export default function () {
  const inBurst = Date.now() - exec.scenario.startTime < burst * 1000;
  if (inBurst || mine.length === 0) return openBatch();
  // A new customer pays an existing customer on the same shard.
  const a = mine[randInt(mine.length)];
  const s = meta.shards[a.shard];
  createTransfers(
    [transfer(a.id, ids[s.start + randInt(s.end - s.start)], 1 + randInt(100), 'bench payment')],
    'transfer',
  );
}

export const handleSummary = summary;
