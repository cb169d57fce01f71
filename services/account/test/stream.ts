// Reads everything the account stream holds (an ordered consumer), for tests that count events.
import { streamName } from '@corebank/kit';
import type { Nats } from '@corebank/kit';

export interface StreamMessage {
  subject: string;
  msgId: string;
  data: Uint8Array;
}

export async function readStream(nats: Nats): Promise<StreamMessage[]> {
  const info = await nats.jsm.streams.info(streamName('account'));
  const last = info.state.last_seq;
  const out: StreamMessage[] = [];
  if (info.state.messages === 0) return out;
  const consumer = await nats.js.consumers.get(streamName('account'));
  const messages = await consumer.consume();
  for await (const m of messages) {
    out.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id') ?? '', data: m.data });
    if (m.seq >= last) break;
  }
  await messages.close();
  return out;
}

export async function outboxDrained(
  bankDbs: { db: { raw: (s: string) => Promise<{ rows: { n: bigint }[] }> } }[],
): Promise<boolean> {
  for (const s of bankDbs) {
    const { rows } = await s.db.raw('select count(*) as n from outbox where sent_at is null');
    if (rows[0]!.n !== 0n) return false;
  }
  return true;
}
