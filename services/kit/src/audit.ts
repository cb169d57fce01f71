// The audit trail: every mutating command of every service, accepted or refused, and every failed
// authentication of any call, leaves an append-only record on the shard where it acted. The kit
// does it for every service: bindService hands each finished call to the server's AuditTrail
// (runtime.serve attaches one), and runtime.serve registers the AuditService (ListAuditRecords)
// beside the service's own. A service writes no audit code; a handler may name the shard it acted
// on with `ctx.auditShard = shard.index` when the default rule below cannot see it.
//
// What is recorded (table audit_log, kit migration 002, in every service's schema on every shard):
// when, the channel (the forwarded channel when a service calls on one's behalf), the verified
// subject, the customer binding, the calling service identity, the receiving service and method,
// the idempotency key, the SHA-256 of the serialized request bytes, the outcome (gRPC code and
// DomainError reason) and the W3C trace id. Nothing of the request body itself, and never a token.
//
// Which calls: every method except reads (Get*, List*, Check*, Preview*, Compute*), which are
// recorded only when authentication failed.
//
// The idempotency key rule: the request's top-level `idempotency_key` field; else its
// `external_reference` (CreateCustomer's key: the channel's own id for the customer); for a request
// that carries `transfers` (CreateTransfers) the transfer ids, comma-separated, cut at 1,024
// characters with "+N" for the ids left out (a transfer's id is its idempotency key); else empty.
//
// Which shard: `ctx.auditShard` when the handler set it; else the home shard of the customer the
// token is bound to; else of the request's `customer_id` / `owner_id`; else of the first top-level
// `*_id` field that carries a bucket (account, payment ids); else of transfers[0]'s debit account;
// else shard 0. A global service (product) has one database, so all of its records go there.
//
// Written off the hot path: records wait in a bounded in-process buffer and are written every
// AUDIT_FLUSH_MS or AUDIT_BATCH_SIZE records, one statement per shard that inserts the audit rows
// and their corebank.audit.recorded.<domain> events (table audit_outbox) together; the service's
// relay publishes them to the bank-wide stream CB_AUDIT with its own events (one loop, both tables,
// AUDIT_RELAY), so every record is also an event. Trade-off, stated plainly:
// a record is written after the answer was sent, so a process that crashes (or is killed) loses
// what sits in its buffer (at most AUDIT_FLUSH_MS of calls, typically a few ms); a full buffer
// (the database unreachable for long) drops new records and counts them in
// audit_records_dropped_total. SIGTERM flushes the buffer after the server drained.
//
// Append-only: a trigger refuses UPDATE, TRUNCATE and DELETE on audit_log (for any role, the
// table's owner and a superuser included, short of disabling the trigger), and UPDATE, DELETE and
// TRUNCATE are revoked from PUBLIC. The only way rows leave is audit_purge(days), a SECURITY
// DEFINER function that deletes rows older than `days` (at least 1) and that the trigger lets
// through; the serving process calls it hourly with AUDIT_RETENTION_DAYS (0: keep for ever).
import { createHash, randomUUID } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { Counter } from 'prom-client';
import type { Principal, TokenVerifier } from './auth.js';
import { bind, isPermanentFailure, preparedRaw } from './db.js';
import { Violations } from './errors.js';
import { text, timestampField } from './bounds.js';
import { AuditServiceService, type AuditRecord, type ListAuditRecordsRequest } from './gen/corebank/v1/audit.js';
import { AuditRecorded } from './gen/corebank/v1/events.js';
import type { Logger } from './log.js';
import { registry } from './metrics.js';
import type { Migration } from './migrate.js';
import { outboxInsert, traceCarrier, type OutboxEvent } from './outbox.js';
import { cursorInt, cursorUuid, encodePageToken, readPage } from './paging.js';
import { bucketOfId, type ShardRouter } from './sharding.js';
import { fromTimestamp, toTimestamp } from './time.js';
import { bindService, type ServiceBinding } from './grpc/server.js';

/** The events' stream (CB_AUDIT, every service's records) and each service's subject in it. */
export const AUDIT_DOMAIN = 'audit';
export const auditSubject = (domain: string): string => `corebank.${AUDIT_DOMAIN}.recorded.${domain}`;
/** The table the records' events wait in for their relay (an OutboxRelay with `table`). */
export const AUDIT_OUTBOX = 'audit_outbox';
/**
 * How a service's relay runs with its audit records: both outbox tables in one loop per shard (read
 * together, marked together), woken by the outbox's NOTIFY and in-process after each audit write,
 * and polling every second as the safety net for audit records another process wrote (their
 * table sends no NOTIFY).
 */
export const AUDIT_RELAY = { tables: ['outbox', AUDIT_OUTBOX], pollMs: 1_000 } as const;

/** The scope an auditor's token needs for ListAuditRecords. */
export const AUDIT_READ_SCOPE = 'audit:read';
export const AUDIT_SERVICE_NAME = 'corebank.v1.AuditService';

/** Reads, by their proto method name: recorded only when authentication failed. */
export const isReadOnlyMethod = (method: string): boolean => /^(Get|List|Check|Preview|Compute)[A-Z]/.test(method);

export const auditRecordsWritten = new Counter({
  name: 'audit_records_written_total',
  help: 'audit records written to the audit_log table',
  registers: [registry],
});
export const auditRecordsDropped = new Counter({
  name: 'audit_records_dropped_total',
  help: 'audit records lost because the audit buffer was full (the database unreachable for long)',
  registers: [registry],
});

// ---------------------------------------------------------------------------------------------
// The table

export const auditMigration: Migration = {
  name: '002_kit_audit_log',
  async up(db) {
    await db.raw(`
      create table audit_log (
        seq bigserial primary key,
        id uuid not null unique,
        recorded_at timestamptz not null,
        channel text,
        subject text,
        customer_id text,
        caller_service text,
        service text not null,
        method text not null,
        idempotency_key text,
        request_sha256 bytea not null,
        code integer not null,
        reason text,
        trace_id text
      );
      create index audit_log_time on audit_log (recorded_at desc, id desc);
      create index audit_log_customer on audit_log (customer_id, recorded_at desc, id desc) where customer_id is not null;

      create function audit_log_append_only() returns trigger language plpgsql as $fn$
      declare
        purge_before text := current_setting('corebank.audit_purge_before', true);
      begin
        if tg_op = 'DELETE' and purge_before is not null and purge_before <> ''
           and old.recorded_at < purge_before::timestamptz then
          return old;
        end if;
        raise exception 'audit_log is append-only: % refused (rows leave only through audit_purge)', tg_op
          using errcode = 'insufficient_privilege';
      end
      $fn$;
      create trigger audit_log_no_update before update or delete on audit_log
        for each row execute function audit_log_append_only();
      create trigger audit_log_no_truncate before truncate on audit_log
        for each statement execute function audit_log_append_only();
      revoke update, delete, truncate on audit_log from public;

      -- Retention: the one path by which rows leave. It deletes only rows older than days (>= 1).
      create function audit_purge(days integer) returns bigint language plpgsql security definer
        set search_path from current as $fn$
      declare
        n bigint;
      begin
        if days is null or days < 1 then
          raise exception 'audit_purge: days must be at least 1';
        end if;
        perform set_config('corebank.audit_purge_before', (now() - make_interval(days => days))::text, true);
        delete from audit_log where recorded_at < now() - make_interval(days => days);
        get diagnostics n = row_count;
        perform set_config('corebank.audit_purge_before', '', true);
        return n;
      end
      $fn$;
      revoke all on function audit_purge(integer) from public;

      -- The records' events, relayed to CB_AUDIT by a relay of their own (runtime.ts): the
      -- service's outbox holds only its domain events.
      create table audit_outbox (
        seq bigserial primary key,
        id uuid not null unique,
        subject text not null,
        payload bytea not null,
        headers jsonb not null default '{}',
        created_at timestamptz not null default now(),
        sent_at timestamptz
      );
      create index audit_outbox_unsent on audit_outbox (seq) where sent_at is null;
      create index audit_outbox_sent on audit_outbox (sent_at) where sent_at is not null;
    `);
  },
};

// ---------------------------------------------------------------------------------------------
// What a finished call hands over

export interface AuditedCall {
  service: string;
  method: string;
  /** Undefined when authentication failed (or the call was shed before it). */
  principal?: Principal;
  request: unknown;
  /** SHA-256 of the serialized request bytes (absent: hashed as empty). */
  sha256?: Buffer;
  code: number;
  reason: string;
  metadata: Metadata;
  /** The shard the handler said it acted on (ctx.auditShard). */
  shard?: number;
}

export interface AuditSink {
  record(call: AuditedCall): void;
}

const MAX_KEY = 1024;
const MAX_TEXT = 256;

/**
 * Text from a request or a token as the record keeps it: control characters (NUL included, which
 * PostgreSQL text cannot hold) become U+FFFD and it is cut at `max`, so a hostile value can neither
 * fail the batch it is written in nor fill the table.
 */
export function auditText(s: string, max = MAX_TEXT): string {
  return s.slice(0, max).replace(/\p{Cc}/gu, '\uFFFD');
}

/** The idempotency key of a request (see the rule at the top). */
export function idempotencyKeyOf(req: unknown): string {
  if (typeof req !== 'object' || req === null) return '';
  const r = req as Record<string, unknown>;
  if (typeof r.idempotencyKey === 'string' && r.idempotencyKey) return auditText(r.idempotencyKey, MAX_KEY);
  if (typeof r.externalReference === 'string' && r.externalReference) return auditText(r.externalReference, MAX_KEY);
  if (Array.isArray(r.transfers)) {
    // Only the ids that fit are looked at: a batch of thousands costs no more than one of thirty.
    const transfers = r.transfers as { id?: unknown }[];
    let out = '';
    let i = 0;
    for (; i < transfers.length; i++) {
      const id = transfers[i]?.id;
      const next = `${out}${i ? ',' : ''}${typeof id === 'string' ? auditText(id, 64) : ''}`;
      if (next.length > MAX_KEY - 8) break;
      out = next;
    }
    return i < transfers.length ? `${out},+${transfers.length - i}` : out;
  }
  return '';
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The call's trace id: the active span's, else the caller's traceparent header; '' when none. */
export function traceIdOf(metadata: Metadata): string {
  const span = trace.getActiveSpan()?.spanContext();
  if (span && /[1-9a-f]/.test(span.traceId)) return span.traceId;
  const header = metadata.get('traceparent')[0];
  const m = typeof header === 'string' ? TRACEPARENT.exec(header) : null;
  return m && /[1-9a-f]/.test(m[1]!) ? m[1]! : '';
}

// ---------------------------------------------------------------------------------------------
// The trail: buffer, writer, retention

export interface AuditOptions {
  /** Longest a record waits in the buffer (ms). */
  flushMs: number;
  /** A buffer this full is written at once. */
  batchSize: number;
  /** Records held at most; beyond, new ones are dropped (counted). */
  bufferMax: number;
  /** Records older than this are purged (hourly); 0: kept for ever. */
  retentionDays: number;
}

interface Pending {
  shard: number;
  row: {
    id: string;
    at: Date;
    channel: string | null;
    subject: string | null;
    customerId: string | null;
    callerService: string | null;
    service: string;
    method: string;
    key: string | null;
    sha: Buffer;
    code: number;
    reason: string | null;
    traceId: string | null;
  };
  trace: Record<string, string>;
}

const EMPTY_SHA = createHash('sha256').digest();

export class AuditTrail implements AuditSink {
  private buffer: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private firstPurge: NodeJS.Timeout | undefined;
  private retryAt = 0;
  private stopped = false;
  private failing = false;

  constructor(
    readonly router: ShardRouter,
    readonly domain: string,
    private readonly log: Logger,
    readonly opts: AuditOptions,
    /** Called after records were written to a shard (wakes the audit relay). */
    private readonly written: (shard: number) => void = () => undefined,
  ) {}

  /** Starts the hourly retention purge (when a retention is set). */
  start(): void {
    if (this.opts.retentionDays > 0) {
      const run = () => void this.purge().catch((err: unknown) => this.log.warn({ err }, 'audit purge failed'));
      this.purgeTimer = setInterval(run, 3_600_000);
      this.purgeTimer.unref();
      this.firstPurge = setTimeout(run, 10_000);
      this.firstPurge.unref();
    }
  }

  /** Stops the purge and writes what the buffer holds. */
  async stop(): Promise<void> {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    if (this.firstPurge) clearTimeout(this.firstPurge);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.retryAt = 0;
    await this.flush();
    // One last try for what a failed write put back; after that the pools close: no more retries.
    if (this.buffer.length) await this.flush();
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.buffer.length) {
      auditRecordsDropped.inc(this.buffer.length);
      this.log.error({ records: this.buffer.length }, 'audit records lost at shutdown: the database refused them');
      this.buffer = [];
    }
  }

  /** Deletes records past the retention on every shard (through audit_purge). */
  async purge(): Promise<number> {
    let n = 0;
    for (const s of this.router.shards) {
      const { rows } = (await s.db.raw('select audit_purge(?) as n', [this.opts.retentionDays])) as {
        rows: { n: string | number | bigint }[];
      };
      n += Number(rows[0]?.n ?? 0);
    }
    return n;
  }

  record(call: AuditedCall): void {
    if (this.stopped || this.buffer.length >= this.opts.bufferMax) {
      auditRecordsDropped.inc();
      return;
    }
    const p = call.principal;
    this.buffer.push({
      shard: this.shardOf(call),
      row: {
        id: randomUUID(),
        at: new Date(),
        channel: p ? auditText(p.onBehalfOf ?? p.channel) : null,
        subject: p ? auditText(p.channel) : null,
        customerId: p?.customerId !== undefined ? auditText(p.customerId) : null,
        callerService: p?.service !== undefined ? auditText(p.service) : null,
        service: call.service,
        method: call.method,
        key: idempotencyKeyOf(call.request) || null,
        sha: call.sha256 ?? EMPTY_SHA,
        code: call.code,
        reason: call.reason ? auditText(call.reason) : null,
        traceId: traceIdOf(call.metadata) || null,
      },
      trace: traceCarrier(),
    });
    // Written outside the call's trace: the batch belongs to no one request.
    if (this.buffer.length >= this.opts.batchSize) context.with(ROOT_CONTEXT, () => void this.flush());
    else this.timer ??= context.with(ROOT_CONTEXT, () => setTimeout(() => void this.flush(), this.opts.flushMs));
  }

  /** Writes the buffer: one statement per shard (audit rows and their events together). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.buffer.length ? this.flush() : undefined));
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    if (!batch.length) return Promise.resolve();
    this.buffer = [];
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
      if (this.buffer.length && !this.stopped) this.timer ??= setTimeout(() => void this.flush(), this.retryDelay());
    });
    return this.flushing;
  }

  private retryDelay(): number {
    return Math.max(this.opts.flushMs, this.retryAt - Date.now());
  }

  private async write(batch: Pending[]): Promise<void> {
    const byShard = new Map<number, Pending[]>();
    for (const p of batch) byShard.set(p.shard, [...(byShard.get(p.shard) ?? []), p]);
    await Promise.all(
      [...byShard].map(async ([shard, list]) => {
        try {
          await this.insert(shard, list);
          auditRecordsWritten.inc(list.length);
          if (this.failing) this.log.info({ shard }, 'audit records written again');
          this.failing = false;
          this.written(shard);
        } catch (err) {
          if (isPermanentFailure(err)) {
            // The data itself is refused (it should not be: auditText cleans it). Write the records
            // one by one, so that only the offender is lost, and never retry it.
            for (const one of list) {
              await this.insert(shard, [one]).then(
                () => auditRecordsWritten.inc(),
                (e: unknown) => {
                  auditRecordsDropped.inc();
                  this.log.error({ err: e, shard, method: one.row.method }, 'audit record refused by the database');
                },
              );
            }
            return;
          }
          // Keep them for the next flush, as far as the buffer has room; retry in a second.
          // Logged once per outage, not on every retry.
          if (!this.failing)
            this.log.error({ err, shard, records: list.length }, 'audit records not written; retrying');
          this.failing = true;
          const room = Math.max(0, this.opts.bufferMax - this.buffer.length);
          this.buffer.unshift(...list.slice(0, room));
          if (list.length > room) auditRecordsDropped.inc(list.length - room);
          this.retryAt = Date.now() + 1000;
        }
      }),
    );
  }

  private async insert(shard: number, list: Pending[]): Promise<void> {
    const db = this.router.shards[shard]!.db;
    const events: OutboxEvent[] = list.map((p) => ({
      id: p.row.id,
      subject: auditSubject(this.domain),
      payload: AuditRecorded.encode({
        meta: { eventId: p.row.id, occurredAt: toTimestamp(p.row.at), shard },
        record: toProto(shard, p.row),
      }).finish(),
      trace: p.trace,
    }));
    const outbox = outboxInsert(events, AUDIT_OUTBOX);
    const col = <T>(f: (r: Pending['row']) => T) => list.map((p) => f(p.row));
    await preparedRaw(
      db,
      `with audit as (
         insert into audit_log (id, recorded_at, channel, subject, customer_id, caller_service, service, method,
                                idempotency_key, request_sha256, code, reason, trace_id)
         select * from unnest(?::uuid[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
                              ?::text[], ?::text[], ?::bytea[], ?::int[], ?::text[], ?::text[])
       )
       ${outbox.sql}`,
      bind([
        col((r) => r.id),
        col((r) => r.at),
        col((r) => r.channel),
        col((r) => r.subject),
        col((r) => r.customerId),
        col((r) => r.callerService),
        col((r) => r.service),
        col((r) => r.method),
        col((r) => r.key),
        col((r) => r.sha),
        col((r) => r.code),
        col((r) => r.reason),
        col((r) => r.traceId),
        ...outbox.bindings,
      ]),
    );
  }

  /** The shard a call acted on (see the rule at the top). */
  shardOf(call: AuditedCall): number {
    const router = this.router;
    const count = router.shards.length;
    if (count === 1) return 0;
    if (call.shard !== undefined && Number.isInteger(call.shard) && call.shard >= 0 && call.shard < count) {
      return call.shard;
    }
    if (call.principal?.customerId) return router.byCustomer(call.principal.customerId).index;
    const r = (typeof call.request === 'object' && call.request !== null ? call.request : {}) as Record<
      string,
      unknown
    >;
    for (const k of ['customerId', 'ownerId']) {
      const v = r[k];
      if (typeof v === 'string' && v && v.length <= 128) return router.byCustomer(v.toLowerCase()).index;
    }
    for (const [k, v] of Object.entries(r)) {
      if (k.endsWith('Id') && typeof v === 'string' && bucketOfId(v) !== undefined) return router.byId(v)!.index;
    }
    const first = Array.isArray(r.transfers) ? (r.transfers[0] as { debitAccountId?: unknown } | undefined) : undefined;
    if (typeof first?.debitAccountId === 'string' && bucketOfId(first.debitAccountId) !== undefined) {
      return router.byId(first.debitAccountId)!.index;
    }
    return 0;
  }
}

function toProto(shard: number, r: Pending['row']): AuditRecord {
  return {
    id: r.id,
    recordedAt: toTimestamp(r.at),
    channel: r.channel ?? '',
    subject: r.subject ?? '',
    customerId: r.customerId ?? '',
    callerService: r.callerService ?? '',
    service: r.service,
    method: r.method,
    idempotencyKey: r.key ?? '',
    requestSha256: r.sha.toString('hex'),
    code: r.code,
    reason: r.reason ?? '',
    traceId: r.traceId ?? '',
    shard,
  };
}

// ---------------------------------------------------------------------------------------------
// ListAuditRecords

interface AuditRow {
  id: string;
  recorded_at: Date;
  at_us: string;
  channel: string | null;
  subject: string | null;
  customer_id: string | null;
  caller_service: string | null;
  service: string;
  method: string;
  idempotency_key: string | null;
  request_sha256: Buffer;
  code: number;
  reason: string | null;
  trace_id: string | null;
}

const FILTER = { max: 128 };

/** Records of all of this service's shards, newest first, filtered; paged by (time, id). */
export async function listAuditRecords(
  router: ShardRouter,
  req: ListAuditRecordsRequest,
): Promise<{ records: AuditRecord[]; nextPageToken: string }> {
  const v = new Violations();
  text(v, 'customer_id', req.customerId, FILTER);
  text(v, 'channel', req.channel, FILTER);
  text(v, 'method', req.method, FILTER);
  if (req.from) timestampField(v, 'from', req.from);
  if (req.to) timestampField(v, 'to', req.to);
  const query = {
    rpc: 'ListAuditRecords',
    filters: [req.customerId, req.channel, req.method, req.from ?? null, req.to ?? null],
  };
  const page = readPage(v, req.page, query, (c) => {
    const at = cursorInt(c[0]);
    const id = cursorUuid(c[1]);
    return c.length === 2 && at !== undefined && id !== undefined ? { at, id } : undefined;
  });
  v.throwIfAny();
  const rows = (
    await Promise.all(
      router.shards.map(async (s) => {
        const q = s
          .db('audit_log')
          .select('*', s.db.raw(`(extract(epoch from recorded_at) * 1000000)::bigint::text as at_us`))
          .orderBy([
            { column: 'recorded_at', order: 'desc' },
            { column: 'id', order: 'desc' },
          ])
          .limit(page.size + 1);
        if (req.customerId) q.where('customer_id', req.customerId);
        if (req.channel) q.where('channel', req.channel);
        if (req.method) q.where('method', req.method);
        if (req.from) q.where('recorded_at', '>=', fromTimestamp(req.from));
        if (req.to) q.where('recorded_at', '<', fromTimestamp(req.to));
        if (page.after) {
          q.whereRaw(`(recorded_at, id) < (timestamptz 'epoch' + ?::bigint * interval '1 microsecond', ?::uuid)`, [
            page.after.at.toString(),
            page.after.id,
          ]);
        }
        return ((await q) as AuditRow[]).map((r) => ({ ...r, shard: s.index }));
      }),
    )
  )
    .flat()
    .sort((a, b) => {
      const d = BigInt(b.at_us) - BigInt(a.at_us);
      return d !== 0n ? (d > 0n ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
    });
  const pageRows = rows.slice(0, page.size);
  const last = pageRows.at(-1);
  return {
    records: pageRows.map((r) =>
      toProto(r.shard, {
        id: r.id,
        at: r.recorded_at,
        channel: r.channel,
        subject: r.subject,
        customerId: r.customer_id,
        callerService: r.caller_service,
        service: r.service,
        method: r.method,
        key: r.idempotency_key,
        sha: r.request_sha256,
        code: r.code,
        reason: r.reason,
        traceId: r.trace_id,
      }),
    ),
    nextPageToken: rows.length > page.size && last ? encodePageToken(query, [last.at_us, last.id]) : '',
  };
}

/**
 * The AuditService binding every server registers (runtime.serve adds it): ListAuditRecords over
 * this service's own records, for a token with audit:read.
 */
export function auditServiceBinding(router: ShardRouter, verifier: TokenVerifier, log: Logger): ServiceBinding {
  return bindService(
    AUDIT_SERVICE_NAME,
    AuditServiceService,
    {
      async listAuditRecords(req) {
        const { records, nextPageToken } = await listAuditRecords(router, req);
        return { records, page: { nextPageToken } };
      },
    },
    { listAuditRecords: AUDIT_READ_SCOPE },
    verifier,
    log,
  );
}
