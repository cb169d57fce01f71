// How the saga's transfers share CreateTransfers calls (TransferCalls), against a stand-in for the
// call that records what it was sent: alone a step goes at once; while calls are in flight the
// next steps go together; each gets its own result; a request refused for one transfer's sake is
// made again in halves down to that transfer; a transient failure fails the steps of that call only.
import { TransferResultCode as R, type Transfer, type TransferResult } from '@corebank/kit/gen/corebank/v1/account';
import { describe, expect, it } from 'vitest';
import { TransferCalls } from '../src/clients/transfer-calls.js';

const transfer = (id: string) => ({ id }) as Transfer;
const ok = (t: Transfer): TransferResult => ({ id: t.id, code: R.TRANSFER_RESULT_CODE_OK }) as TransferResult;
const later = () => new Date(Date.now() + 5_000);

class Refused extends Error {}

/** A ledger that answers each call when told to, and refuses any request that holds a transfer "bad". */
function ledger() {
  const calls: { ids: string[]; deadline: Date; answer: () => void }[] = [];
  const send = (transfers: Transfer[], deadline: Date) =>
    new Promise<TransferResult[]>((resolve, reject) => {
      calls.push({
        ids: transfers.map((t) => t.id),
        deadline,
        answer: () =>
          transfers.some((t) => t.id === 'bad')
            ? reject(new Refused('transfers[k]: is refused'))
            : transfers.some((t) => t.id === 'down')
              ? reject(new Error('UNAVAILABLE'))
              : resolve(transfers.map(ok)),
      });
    });
  return { calls, send };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('saga transfers share CreateTransfers calls', () => {
  it('sends a step alone at once, and the steps that wait meanwhile together, each with its own result', async () => {
    const l = ledger();
    const calls = new TransferCalls(l.send, (e) => e instanceof Refused, 1, 3);
    const first = calls.submit(transfer('a'), later());
    await settle();
    expect(l.calls.map((c) => c.ids)).toEqual([['a']]);
    const soon = new Date(Date.now() + 1_000);
    const rest = ['b', 'c', 'd', 'e'].map((id, i) => calls.submit(transfer(id), i === 1 ? soon : later()));
    await settle();
    // Nothing more goes while the one call allowed is in flight.
    expect(l.calls.length).toBe(1);
    l.calls[0]!.answer();
    expect((await first).id).toBe('a');
    await settle();
    // The next call carries what waited, up to the batch's size, with its earliest deadline.
    expect(l.calls[1]!.ids).toEqual(['b', 'c', 'd']);
    expect(l.calls[1]!.deadline).toEqual(soon);
    l.calls[1]!.answer();
    await settle();
    expect(l.calls[2]!.ids).toEqual(['e']);
    l.calls[2]!.answer();
    expect((await Promise.all(rest)).map((r) => r.id)).toEqual(['b', 'c', 'd', 'e']);
  });

  it('makes a refused request again in halves: only the transfer at fault is refused', async () => {
    const l = ledger();
    const calls = new TransferCalls(l.send, (e) => e instanceof Refused, 1, 8);
    const blocker = calls.submit(transfer('x'), later());
    const results = ['f', 'bad', 'g'].map((id) => calls.submit(transfer(id), later()).catch((e: unknown) => e));
    await settle();
    l.calls[0]!.answer();
    await blocker;
    // Each call answered as it comes: the halves go one after the other.
    await settle();
    for (let i = 1; i < l.calls.length; i++) {
      l.calls[i]!.answer();
      await settle();
    }
    expect(l.calls.slice(1).map((c) => c.ids)).toEqual([['f', 'bad', 'g'], ['f'], ['bad', 'g'], ['bad'], ['g']]);
    const [f, bad, g] = await Promise.all(results);
    expect(f).toMatchObject({ id: 'f' });
    expect(bad).toBeInstanceOf(Refused);
    expect(g).toMatchObject({ id: 'g' });
  });

  it('fails the steps of a call that got no answer (to be retried), and only those', async () => {
    const l = ledger();
    const calls = new TransferCalls(l.send, (e) => e instanceof Refused, 1, 8);
    const blocker = calls.submit(transfer('y'), later());
    const failed = ['h', 'down'].map((id) => calls.submit(transfer(id), later()).catch((e: unknown) => e));
    await settle();
    l.calls[0]!.answer();
    await blocker;
    await settle();
    const after = calls.submit(transfer('i'), later());
    l.calls[1]!.answer();
    for (const e of await Promise.all(failed)) expect((e as Error).message).toBe('UNAVAILABLE');
    await settle();
    expect(l.calls[2]!.ids).toEqual(['i']);
    l.calls[2]!.answer();
    expect((await after).id).toBe('i');
  });
});
