// `npm run cob -- [--date YYYY-MM-DD] [--watch]`: closes the bank's open days through --date
// (default: the current business date) on the local bank (`npm run up`), or with --watch only
// follows the close of that date, showing one progress bar per step (chunks done of total, items
// per second, ETA), then each step's totals. Exit status 0 when every day closed, 1 otherwise.
// Another bank: CB_ACCOUNT_ADDRESS=host:port and CB_TOKEN=<token> (a token with day:admin).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ProgressBoard, type ProgressLine } from '@corebank/kit';
import {
  BusinessDayServiceClient,
  CloseOfBusinessState as S,
  type CloseOfBusiness,
} from '@corebank/kit/gen/corebank/v1/day';
import { promisify } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';

const { values } = parseArgs({
  options: { date: { type: 'string', default: '' }, watch: { type: 'boolean', default: false } },
});
const localDir = process.env.LOCAL_DIR ?? '.local';
const address =
  process.env.CB_ACCOUNT_ADDRESS ??
  (JSON.parse(readFileSync(`${localDir}/bank.json`, 'utf8')) as { addresses: Record<string, string> }).addresses
    .account!;
const token = process.env.CB_TOKEN ?? readFileSync(`${localDir}/token`, 'utf8').trim();
const day = promisify(new BusinessDayServiceClient(address, grpc.credentials.createInsecure()), token);

const STEP_UNITS: Record<string, string> = { loans: 'loans/s', deposits: 'accounts/s', gl: 'GL lines/s' };

/** One bar per step: its shards' chunks and items summed. */
function lines(run: CloseOfBusiness): ProgressLine[] {
  const steps = [...new Set(run.steps.map((s) => s.step))];
  return steps.map((step) => {
    const of = run.steps.filter((s) => s.step === step);
    const started = of.flatMap((s) => (s.startedAt ? [Number(s.startedAt.seconds) * 1000] : []));
    const finished = of.every((s) => s.finishedAt)
      ? Math.max(...of.map((s) => Number(s.finishedAt!.seconds) * 1000))
      : undefined;
    return {
      label: `${step}`,
      done: of.reduce((n, s) => n + s.chunksDone, 0),
      total: of.reduce((n, s) => n + s.chunksTotal, 0),
      items: of.reduce((n, s) => n + Number(s.items), 0),
      unit: STEP_UNITS[step] ?? 'items/s',
      startedAt: started.length ? Math.min(...started) : Date.now(),
      ...(finished !== undefined && started.length ? { finishedAt: Math.max(finished, Math.min(...started) + 1) } : {}),
    };
  });
}

async function follow(date: string): Promise<boolean> {
  const board = new ProgressBoard();
  process.stderr.write(`close of business ${date}\n`);
  for (;;) {
    const { run } = await day.getCloseOfBusiness({ businessDate: date });
    const over = run!.state !== S.CLOSE_OF_BUSINESS_STATE_RUNNING;
    board.draw(lines(run!), over);
    if (over) {
      for (const s of run!.steps.filter((x) => x.lastError))
        process.stderr.write(`  ${s.step} shard ${s.shard}: ${s.chunksFailed} chunk(s) failed: ${s.lastError}\n`);
      const totals = new Map<string, bigint>();
      for (const s of run!.steps)
        for (const t of s.totals)
          totals.set(
            `${s.step} ${t.name} ${t.currency}`,
            (totals.get(`${s.step} ${t.name} ${t.currency}`) ?? 0n) + t.amount,
          );
      for (const [k, v] of totals) process.stderr.write(`  ${k}: ${v}\n`);
      process.stderr.write(`${date}: ${S[run!.state].replace('CLOSE_OF_BUSINESS_STATE_', '').toLowerCase()}\n`);
      return run!.state === S.CLOSE_OF_BUSINESS_STATE_COMPLETED;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

try {
  let dates: string[];
  if (values.watch) dates = [values.date || (await day.getBusinessDate({})).businessDate];
  else {
    const { runs } = await day.runCloseOfBusiness({ through: values.date, idempotencyKey: randomUUID() });
    dates = runs.map((r) => r.businessDate);
    if (dates.length === 0) process.stderr.write('nothing to close: every day through that date is closed\n');
    // The later days start when the one before is closed: follow them as they come.
    const last = values.date || dates.at(-1);
    if (last && dates.length > 0) {
      let d = dates[0]!;
      dates = [];
      for (; d <= last; d = new Date(Date.parse(`${d}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10))
        dates.push(d);
    }
  }
  let ok = true;
  for (const d of dates) {
    // A later day appears once the one before is closed.
    for (let i = 0; i < 600; i++) {
      const known = await day.getCloseOfBusiness({ businessDate: d }).then(
        () => true,
        () => false,
      );
      if (known) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    ok = (await follow(d)) && ok;
    if (!ok) break;
  }
  process.exitCode = ok ? 0 : 1;
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  day.close();
}
