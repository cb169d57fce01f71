// The audit trail, through the real bank (account, customer, product, payment, 2 shards): every
// mutating call of a payment flow leaves a record, accepted or refused, and so does a failed
// authentication (of a read too); plain reads leave none. Records carry the channel, subject,
// customer binding, method, idempotency key, the request's SHA-256, the outcome and the trace id;
// they land on the shard where the command acted, are published as outbox events, cannot be
// updated, deleted or truncated (only audit_purge removes rows past the retention), and are read
// with ListAuditRecords (filters, paging, the audit:read scope).
import { createHash, randomUUID } from 'node:crypto';
import { AUDIT_READ_SCOPE, audienceOf, errorDetails, toTimestamp } from '@corebank/kit';
import { AuditServiceClient, ListAuditRecordsRequest, type AuditRecord } from '@corebank/kit/gen/corebank/v1/audit';
import { type Account } from '@corebank/kit/gen/corebank/v1/account';
import { AuditRecorded } from '@corebank/kit/gen/corebank/v1/events';
import { CreatePaymentRequest, PaymentServiceClient } from '@corebank/kit/gen/corebank/v1/payment';
import { promisify, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { status as Code, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { personRequest } from '../../customer/test/fixtures.js';
import {
  depositAccount,
  NO_RISK_RULES,
  publishedDeposit,
  settled,
  startPayments,
  verifiedCustomer,
  type TestPayments,
} from './harness.js';

const MOBILE = ['payments:read', 'payments:write'];
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('audit trail (2 shards)', () => {
  let t: TestPayments;
  let alice: { id: string; account: Account };
  let bob: { id: string; account: Account };
  let auditor: ReturnType<typeof auditClient>;
  let ledgerAuditor: ReturnType<typeof auditClient>;
  const closers: (() => void)[] = [];
  const mobile = (customerId: string) =>
    testToken(MOBILE, customerId, { channel: 'mobile', audience: audienceOf('payment') });
  const auditClient = (address: string, token: string) => {
    const c = promisify(new AuditServiceClient(address, grpc.credentials.createInsecure()), token);
    closers.push(() => c.close());
    // The generated encoder wants every field: fill in the defaults.
    return {
      listAuditRecords: (r: Partial<ListAuditRecordsRequest>) =>
        c.listAuditRecords(ListAuditRecordsRequest.fromPartial(r)),
    };
  };
  /** A CreatePayment with a traceparent header; the error or the response. */
  const createPayment = (token: string, req: CreatePaymentRequest) => {
    const c = new PaymentServiceClient(t.address, grpc.credentials.createInsecure());
    closers.push(() => c.close());
    const md = new grpc.Metadata();
    if (token) md.set('authorization', `Bearer ${token}`);
    md.set('traceparent', `00-${TRACE_ID}-00f067aa0ba902b7-01`);
    return new Promise<{ err?: ServiceError; paymentId?: string }>((resolve) =>
      c.createPayment(req, md, { deadline: Date.now() + 30_000 }, (err, res) =>
        resolve(err ? { err } : { paymentId: res!.payment!.id }),
      ),
    );
  };
  /** Every record of the payment service with this idempotency key or method, once written. */
  const recordsOf = async (filter: (r: AuditRecord) => boolean, n: number, client = auditor) => {
    let found: AuditRecord[] = [];
    await expect
      .poll(
        async () => {
          const { records } = await client.listAuditRecords({ page: { pageSize: 1000, pageToken: '' } });
          found = records.filter(filter);
          return found.length;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBeGreaterThanOrEqual(n);
    return found;
  };

  beforeAll(async () => {
    t = await startPayments(2, NO_RISK_RULES);
    const product = await publishedDeposit(t, {});
    for (const who of ['alice', 'bob'] as const) {
      const c = await verifiedCustomer(t);
      const account = await depositAccount(t, c.id, product.productId, 10_000n);
      if (who === 'alice') alice = { id: c.id, account };
      else bob = { id: c.id, account };
    }
    const auditorToken = await testToken([AUDIT_READ_SCOPE], undefined, { channel: 'auditor' });
    auditor = auditClient(t.address, auditorToken);
    ledgerAuditor = auditClient(t.bank.address, auditorToken);
  });
  afterAll(async () => {
    closers.forEach((c) => c());
    await t?.stop();
  });

  it('records every mutating call of a payment flow, accepted and refused, and every failed authentication', async () => {
    const key = `audit-${randomUUID()}`;
    const req: CreatePaymentRequest = {
      idempotencyKey: key,
      payerAccountId: alice.account.id,
      payeeAccountId: bob.account.id,
      amount: 250n,
      currency: 'EUR',
      reference: 'rent',
    };
    const accepted = await createPayment(await mobile(alice.id), req);
    expect(accepted.err).toBeUndefined();
    const payment = await settled(t.client, accepted.paymentId!);

    // Refused: alice's channel reaching for bob's money; too much; a bad token; no token at all.
    const refusedKey = `audit-${randomUUID()}`;
    const stolen = await createPayment(await mobile(alice.id), {
      ...req,
      idempotencyKey: refusedKey,
      payerAccountId: bob.account.id,
      payeeAccountId: alice.account.id,
    });
    expect(stolen.err).toBeDefined();
    const badKey = `audit-${randomUUID()}`;
    const bad = await createPayment('not.a.jwt', { ...req, idempotencyKey: badKey });
    expect(bad.err?.code).toBe(Code.UNAUTHENTICATED);
    const noneKey = `audit-${randomUUID()}`;
    const none = await createPayment('', { ...req, idempotencyKey: noneKey });
    expect(none.err?.code).toBe(Code.UNAUTHENTICATED);
    // A read: not recorded when it succeeds, recorded when its authentication fails.
    await t.client.getPayment({ paymentId: payment.id });
    await expectRpcError(
      t.clientWith('not.a.jwt').getPayment({ paymentId: payment.id }),
      Code.UNAUTHENTICATED,
      undefined,
      'MALFORMED_TOKEN',
    );

    const [ok] = await recordsOf((r) => r.idempotencyKey === key, 1);
    const body = Buffer.from(CreatePaymentRequest.encode(req).finish());
    expect(ok).toMatchObject({
      channel: 'mobile',
      subject: 'mobile',
      customerId: alice.id,
      service: 'corebank.v1.PaymentService',
      method: 'CreatePayment',
      idempotencyKey: key,
      requestSha256: createHash('sha256').update(body).digest('hex'),
      code: Code.OK,
      reason: '',
      traceId: TRACE_ID,
      // On alice's home shard, where the order lives.
      shard: t.app.router.byCustomer(alice.id).index,
    });
    expect(Math.abs(Number(ok!.recordedAt!.seconds) * 1000 - Date.now())).toBeLessThan(60_000);

    const [refused] = await recordsOf((r) => r.idempotencyKey === refusedKey, 1);
    expect(refused).toMatchObject({ channel: 'mobile', customerId: alice.id, code: stolen.err!.code });
    expect(refused!.reason).toBe(errorDetails(stolen.err!).reason);
    expect(refused!.code).not.toBe(Code.OK);

    for (const [k, reason] of [
      [badKey, 'MALFORMED_TOKEN'],
      [noneKey, 'MISSING_TOKEN'],
    ] as const) {
      const [r] = await recordsOf((x) => x.idempotencyKey === k, 1);
      expect(r).toMatchObject({
        channel: '',
        subject: '',
        customerId: '',
        method: 'CreatePayment',
        code: Code.UNAUTHENTICATED,
        reason,
        traceId: TRACE_ID,
      });
    }
    const reads = await recordsOf((r) => r.method === 'GetPayment', 1);
    expect(reads.map((r) => [r.code, r.reason])).toEqual([[Code.UNAUTHENTICATED, 'MALFORMED_TOKEN']]);

    // The ledger recorded the transfers the payment service made for the order, as itself, on
    // alice's behalf: the transfer ids are the idempotency key.
    const transfers = await recordsOf(
      (r) => r.method === 'CreateTransfers' && r.callerService === 'payment',
      1,
      ledgerAuditor,
    );
    expect(transfers[0]).toMatchObject({ subject: 'payment', service: 'corebank.v1.AccountService', code: Code.OK });
    expect(transfers[0]!.idempotencyKey).toMatch(/^[0-9a-f-]{36}(,[0-9a-f-]{36})*$/);
    // The customer and product services recorded the set-up commands (KYC, publishing).
    const people = (
      await auditClient(`127.0.0.1:${t.peers.people.app.server.port}`, await auditorToken()).listAuditRecords({})
    ).records;
    expect(people.map((r) => r.method)).toEqual(expect.arrayContaining(['CreateCustomer', 'SubmitKyc', 'DecideKyc']));
    // CreateCustomer's key is its external reference (the channel's own id for the customer).
    expect(people.find((r) => r.method === 'CreateCustomer')!.idempotencyKey).toMatch(/^ref-/);
    expect(
      (await auditClient(t.peers.catalog.address, await auditorToken()).listAuditRecords({})).records.map(
        (r) => r.method,
      ),
    ).toEqual(expect.arrayContaining(['CreateProduct', 'PublishProductVersion']));

    // Published: each record is an event in audit_outbox on the shard that holds it (the
    // service's own outbox holds only its domain events)...
    const shard = t.app.router.shards[ok!.shard]!;
    expect(await shard.db('outbox').where('subject', 'like', 'corebank.audit.%').first()).toBeUndefined();
    const events = (await shard.db('audit_outbox').where('subject', 'corebank.audit.recorded.payment')) as {
      payload: Buffer;
    }[];
    const event = events.map((e) => AuditRecorded.decode(e.payload)).find((e) => e.record?.id === ok!.id);
    expect(event?.record).toMatchObject({ idempotencyKey: key, method: 'CreatePayment', customerId: alice.id });
    expect(event?.meta?.eventId).toBe(ok!.id);
    // ...and the relay publishes it to the bank-wide audit stream (it marks a row sent on the ack).
    await expect
      .poll(async () => (await shard.db('audit_outbox').where('id', ok!.id).first('sent_at'))?.sent_at, {
        timeout: 10_000,
      })
      .toBeTruthy();
  });

  it('is append-only: updates, deletes and truncation are refused; only audit_purge removes old rows', async () => {
    await recordsOf(() => true, 1);
    for (const shard of t.app.router.shards) {
      const [n] = (await shard.db('audit_log').count({ n: '*' })) as [{ n: string }];
      if (Number(n.n) === 0) continue;
      await expect(shard.db('audit_log').update({ code: 0 })).rejects.toThrow(/append-only: UPDATE refused/);
      await expect(shard.db('audit_log').update({ reason: 'x' }).where('seq', 1)).rejects.toThrow(/append-only/);
      await expect(shard.db('audit_log').delete()).rejects.toThrow(/append-only: DELETE refused/);
      await expect(shard.db.raw('truncate audit_log')).rejects.toThrow(/append-only: TRUNCATE refused/);
      // Setting the purge marker by hand lets no young row go either.
      await expect(
        shard.db.transaction(async (tx) => {
          await tx.raw(`select set_config('corebank.audit_purge_before', (now() - interval '1 day')::text, true)`);
          await tx('audit_log').delete();
        }),
      ).rejects.toThrow(/append-only/);
      const [after] = (await shard.db('audit_log').count({ n: '*' })) as [{ n: string }];
      expect(after.n).toBe(n.n);
      // Nobody but the owner holds update/delete/truncate on it.
      const { rows } = (await shard.db.raw(
        `select count(*)::int as n from information_schema.role_table_grants
          where table_name = 'audit_log' and grantee = 'PUBLIC' and privilege_type in ('UPDATE', 'DELETE', 'TRUNCATE')`,
      )) as { rows: { n: number }[] };
      expect(rows[0]!.n).toBe(0);
    }
    // Retention: a record older than the retention goes, the young ones stay.
    const shard = t.app.router.shards[0]!;
    const old = randomUUID();
    await shard.db('audit_log').insert({
      id: old,
      recorded_at: new Date(Date.now() - 400 * 86_400_000),
      service: 'corebank.v1.PaymentService',
      method: 'CreatePayment',
      request_sha256: Buffer.alloc(32),
      code: 0,
    });
    const [before] = (await shard.db('audit_log').count({ n: '*' })) as [{ n: string }];
    await expect(shard.db.raw('select audit_purge(0)')).rejects.toThrow(/at least 1/);
    const { rows } = (await shard.db.raw('select audit_purge(365) as n')) as { rows: { n: string }[] };
    expect(Number(rows[0]!.n)).toBe(1);
    const [after] = (await shard.db('audit_log').count({ n: '*' })) as [{ n: string }];
    expect(Number(after.n)).toBe(Number(before.n) - 1);
    expect(await shard.db('audit_log').where('id', old).first()).toBeUndefined();
  });

  it('lists records with filters and pages, for an auditor only', async () => {
    // A few more commands from two channels.
    const teller = await testToken(MOBILE, undefined, { channel: 'teller', audience: audienceOf('payment') });
    const from = toTimestamp(new Date());
    for (let i = 0; i < 3; i++) {
      await createPayment(teller, {
        idempotencyKey: `teller-${randomUUID()}`,
        payerAccountId: bob.account.id,
        payeeAccountId: alice.account.id,
        amount: 1n,
        currency: 'EUR',
        reference: '',
      });
    }
    await recordsOf((r) => r.channel === 'teller', 3);

    const byChannel = await auditor.listAuditRecords({ channel: 'teller' });
    expect(byChannel.records).toHaveLength(3);
    expect(byChannel.records.every((r) => r.channel === 'teller' && r.method === 'CreatePayment')).toBe(true);
    const byCustomer = await auditor.listAuditRecords({ customerId: alice.id });
    expect(byCustomer.records.length).toBeGreaterThan(0);
    expect(byCustomer.records.every((r) => r.customerId === alice.id)).toBe(true);
    const byMethod = await auditor.listAuditRecords({ method: 'GetPayment' });
    expect(byMethod.records.every((r) => r.method === 'GetPayment')).toBe(true);
    const inRange = await auditor.listAuditRecords({ from, to: toTimestamp(new Date(Date.now() + 1000)) });
    expect(inRange.records.map((r) => r.channel)).toEqual(['teller', 'teller', 'teller']);
    const before = await auditor.listAuditRecords({ channel: 'teller', to: from });
    expect(before.records).toHaveLength(0);

    // Paging: newest first, one at a time, the same records as one page, each once.
    const all = (await auditor.listAuditRecords({ page: { pageSize: 1000, pageToken: '' } })).records;
    expect(all.length).toBeGreaterThan(5);
    const times = all.map((r) => Number(r.recordedAt!.seconds) * 1e9 + r.recordedAt!.nanos);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const paged: string[] = [];
    let pageToken = '';
    do {
      const res = await auditor.listAuditRecords({ page: { pageSize: 2, pageToken } });
      expect(res.records.length).toBeLessThanOrEqual(2);
      paged.push(...res.records.map((r) => r.id));
      pageToken = res.page!.nextPageToken;
    } while (pageToken);
    expect(paged).toEqual(all.map((r) => r.id));
    // A token continues only its own query; bad filters are INVALID_ARGUMENT.
    const first = await auditor.listAuditRecords({ page: { pageSize: 1, pageToken: '' } });
    await expectRpcError(
      auditor.listAuditRecords({ channel: 'teller', page: { pageSize: 1, pageToken: first.page!.nextPageToken } }),
      Code.INVALID_ARGUMENT,
      'page.page_token',
    );
    await expectRpcError(auditor.listAuditRecords({ channel: 'x'.repeat(200) }), Code.INVALID_ARGUMENT, 'channel');

    // The auditor scope is required: a payments token, even an admin's, is refused.
    const { records: beforeDenied } = await auditor.listAuditRecords({ method: 'ListAuditRecords' });
    expect(beforeDenied).toHaveLength(0); // reads are not recorded
    const noScope = auditClient(t.address, await t.token(['payments:read', 'payments:write', 'payments:admin']));
    await expectRpcError(noScope.listAuditRecords({}), Code.PERMISSION_DENIED, undefined, 'MISSING_SCOPE');
    const customer = auditClient(t.address, await mobile(alice.id));
    await expectRpcError(customer.listAuditRecords({ customerId: alice.id }), Code.PERMISSION_DENIED);
  });

  it('keeps identity numbers, contact details and tokens out of logs, events and audit records', async () => {
    const people = t.peers.people;
    const token = await people.token(undefined, undefined, 'teller');
    const client = people.clientWith(token);
    const email = `pii-${randomUUID().slice(0, 8)}@example.org`;
    const phone = '+4930555012345';
    const req = personRequest({ contact: { email, phone, address: undefined } });
    const nationalId = req.person!.nationalId;
    const { customer } = await client.createCustomer(req);
    // Refused calls too: a replay with another body, a bad contact, a bad token carrying the data.
    await expectRpcError(
      client.createCustomer({ ...req, contact: { email: 'x@example.org', phone, address: undefined } }),
      Code.ALREADY_EXISTS,
    );
    await expectRpcError(
      client.updateContact({
        customerId: customer!.id,
        contact: { email: `${email}\u0000`, phone, address: undefined },
        updateMask: [],
        expectedVersion: 0n,
      }),
      Code.INVALID_ARGUMENT,
    );
    await client.updateContact({
      customerId: customer!.id,
      contact: { email: `new-${email}`, phone: '+4930555067890', address: undefined },
      updateMask: [],
      expectedVersion: 0n,
    });
    const forged = `${token.split('.').slice(0, 2).join('.')}.${Buffer.from(email).toString('base64url')}`;
    await expectRpcError(people.clientWith(forged).createCustomer(req), Code.UNAUTHENTICATED);
    // The onboarding is recorded on the new customer's home shard (the handler says so: ctx.auditShard).
    const [created] = await recordsOf(
      (r) => r.idempotencyKey === req.externalReference && r.code === Code.OK,
      1,
      auditClient(`127.0.0.1:${people.app.server.port}`, await auditorToken()),
    );
    expect(created!.shard).toBe(customer!.shard);
    await new Promise((r) => setTimeout(r, 200)); // the last audit batch

    // Everything the customer service logged (level trace), published and recorded.
    const stored = await Promise.all(
      people.app.router.shards.map(async (s) => {
        const q = (sql: string) => s.db.raw(sql).then((r: { rows: { t: string | null }[] }) => r.rows[0]!.t ?? '');
        return [
          await q(`select string_agg(encode(payload, 'escape'), '') as t from outbox`),
          await q(`select string_agg(encode(payload, 'escape'), '') as t from audit_outbox`),
          await q(`select string_agg(row_to_json(a)::text, '') as t from audit_log a`),
        ].join('\n');
      }),
    );
    const everything = [...people.logs, ...stored].join('\n');
    expect(people.logs.length).toBeGreaterThan(0);
    expect(everything).toContain(customer!.id); // the scan sees what it should
    for (const [what, secret] of [
      ['national id', nationalId],
      ['email', email],
      ['new email', `new-${email}`],
      ['phone', phone],
      ['new phone', '+4930555067890'],
      ['token signature', token.split('.')[2]!],
      ['forged token', forged.split('.')[2]!],
    ] as const) {
      expect(everything.includes(secret), what).toBe(false);
    }
  });
});

const auditorToken = () => testToken([AUDIT_READ_SCOPE], undefined, { channel: 'auditor' });
