// The one batching mechanism (BatchQueue), against an `apply` that records its batches and is
// answered by the test: alone a request goes at once; while batches are in flight the next ones
// wait and go together, up to the batch's size, each with its own outcome; a failure `splits`
// names is retried in halves down to the request at fault; any other fails that batch only.
import { describe, expect, it } from 'vitest';
import { BatchQueue, distinctRounds } from '../src/batch-queue.js';

class Refused extends Error {}

/** An apply that holds each batch until answered; a batch holding "bad" is refused, "down" fails. */
function recorder() {
  const batches: { items: string[]; answer: () => void }[] = [];
  const apply = (items: string[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({
        items,
        answer: () =>
          items.includes('bad')
            ? reject(new Refused('bad'))
            : items.includes('down')
              ? reject(new Error('connection lost'))
              : resolve(items.map((i) => `${i}!`)),
      });
    });
  return { batches, apply };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

/** Answers every batch as it comes, until none is waiting. */
async function answerAll(r: ReturnType<typeof recorder>, from = 0) {
  await settle();
  for (let i = from; i < r.batches.length; i++) {
    r.batches[i]!.answer();
    await settle();
  }
}

describe('BatchQueue', () => {
  it('applies a request alone at once, and the requests that wait meanwhile together', async () => {
    const r = recorder();
    const sizes: number[] = [];
    const q = new BatchQueue(r.apply, { maxInFlight: 2, maxBatch: 3, onBatch: (n) => sizes.push(n) });
    const first = [q.submit('a'), q.submit('b')];
    await settle();
    // Two batches may be in flight: each of the first two goes at once, alone.
    expect(r.batches.map((b) => b.items)).toEqual([['a'], ['b']]);
    const rest = ['c', 'd', 'e', 'f'].map((x) => q.submit(x));
    await settle();
    expect(r.batches.length).toBe(2);
    expect(q.waiting).toBe(4);
    await answerAll(r);
    expect(await Promise.all([...first, ...rest])).toEqual(['a!', 'b!', 'c!', 'd!', 'e!', 'f!']);
    // What waited went in batches of at most three, in the order it came.
    expect(r.batches.slice(2).map((b) => b.items)).toEqual([['c', 'd', 'e'], ['f']]);
    expect(sizes).toEqual([1, 1, 3, 1]);
  });

  it('retries a batch refused for one request in halves: only that request gets the error', async () => {
    const r = recorder();
    const q = new BatchQueue(r.apply, { maxInFlight: 1, maxBatch: 8, splits: (e) => e instanceof Refused });
    const blocker = q.submit('x');
    const outcomes = ['f', 'g', 'bad', 'h'].map((x) => q.submit(x).catch((e: unknown) => e));
    await answerAll(r);
    await blocker;
    const [f, g, bad, h] = await Promise.all(outcomes);
    expect([f, g, h]).toEqual(['f!', 'g!', 'h!']);
    expect(bad).toBeInstanceOf(Refused);
    expect(r.batches.slice(1).map((b) => b.items)).toEqual([
      ['f', 'g', 'bad', 'h'],
      ['f', 'g'],
      ['bad', 'h'],
      ['bad'],
      ['h'],
    ]);
  });

  it('fails every request of a batch with an error it does not split on, and only that batch', async () => {
    const r = recorder();
    const q = new BatchQueue(r.apply, { maxInFlight: 1, maxBatch: 8, splits: (e) => e instanceof Refused });
    const blocker = q.submit('y');
    const failed = ['i', 'down'].map((x) => q.submit(x).catch((e: unknown) => e));
    await settle();
    r.batches[0]!.answer();
    await settle();
    const after = q.submit('j');
    await answerAll(r, 1);
    await blocker;
    for (const e of await Promise.all(failed)) expect((e as Error).message).toBe('connection lost');
    expect(await after).toBe('j!');
    expect(r.batches.map((b) => b.items)).toEqual([['y'], ['i', 'down'], ['j']]);
  });

  it('fails a batch whose apply gave the wrong number of outcomes', async () => {
    const q = new BatchQueue(async (items: number[]) => items.slice(1), { maxInFlight: 1, maxBatch: 8 });
    await expect(q.submit(1)).rejects.toThrow('batch applied with 0 outcomes for 1 requests');
  });

  it('splits a batch into rounds of distinct keys, a repeated key in a later round, order kept', () => {
    const items = ['a1', 'b1', 'a2', 'c1', 'a3', 'b2'];
    expect(distinctRounds(items, (x) => x[0]!)).toEqual([['a1', 'b1', 'c1'], ['a2', 'b2'], ['a3']]);
    expect(distinctRounds([], (x: string) => x)).toEqual([]);
  });
});
