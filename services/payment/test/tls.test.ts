// Mutual TLS through the real services: all four services (account, customer, product, payment)
// with TLS_REQUIRED and certificates of a throwaway CA made here. A payment completes with every
// service-to-service call over mutual TLS (a plaintext call is refused by every server, so any
// one would fail it); a client without a certificate, or with one from another CA, is refused at
// the handshake (UNAVAILABLE); replacing the files renews the certificates without a restart.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { PaymentServiceClient, PaymentStatus as S } from '@corebank/kit/gen/corebank/v1/payment';
import { freePort, promisify, testCa, testToken, type TestCa } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balances } from '../../account/test/helpers.js';
import {
  depositAccount,
  NO_RISK_RULES,
  publishedDeposit,
  settled,
  startPayments,
  verifiedCustomer,
  type TestPayments,
} from './harness.js';

const RELOAD_MS = 200;
const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');
const PAYMENTS = ['payments:read', 'payments:write'];
const MAX_CONNECTION_AGE_MS = 2_000;

describe('mutual TLS between all services (2 shards)', () => {
  let dir: string;
  let bank: TestCa;
  let stranger: TestCa;
  let t: TestPayments;
  let tlsEnv: Record<string, string>;
  let accounts: { from: string; to: string };
  const closers: (() => void)[] = [];
  /** The files every service reads; the test replaces them to renew the certificates. */
  const files = () => ({ cert: join(dir, 'live.crt'), key: join(dir, 'live.key'), ca: join(dir, 'live-ca.crt') });

  /** A payment client with these credentials and a full-scope token (a fresh channel: a new connection). */
  const paymentsWith = async (creds: grpc.ChannelCredentials) => {
    const raw = new PaymentServiceClient(t.address, creds);
    closers.push(() => raw.close());
    return promisify(raw, await testToken(PAYMENTS));
  };
  const mtls = (ca: string, leaf: { cert: string; key: string }) =>
    grpc.credentials.createSsl(readFileSync(ca), readFileSync(leaf.key), readFileSync(leaf.cert));
  const refusedAtHandshake = async (creds: grpc.ChannelCredentials) => {
    const c = await paymentsWith(creds);
    const err = (await c.getPayment({ paymentId: randomUUID() }, { deadlineMs: 5_000 }).then(
      () => new Error('expected the call to be refused'),
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(err.code, err.message).toBe(grpc.status.UNAVAILABLE);
  };
  /** The call passed the handshake and reached the handler (which finds no such payment id). */
  const expectServed = (c: Awaited<ReturnType<typeof paymentsWith>>) =>
    expect(c.getPayment({ paymentId: 'no-such-payment' })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  /** The certificate the server at port presents to a new connection. */
  const presented = (port: number, leaf: { cert: string; key: string }, ca: string) =>
    new Promise<PeerCertificate>((resolve, reject) => {
      const s = connect(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port,
          ca: readFileSync(ca),
          cert: readFileSync(leaf.cert),
          key: readFileSync(leaf.key),
          ALPNProtocols: ['h2'],
        },
        () => {
          resolve(s.getPeerCertificate());
          s.end();
        },
      );
      s.once('error', reject);
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corebank-tls-'));
    bank = testCa(dir, 'bank');
    stranger = testCa(dir, 'stranger');
    const service = bank.issue('service');
    copyFileSync(service.cert, files().cert);
    copyFileSync(service.key, files().key);
    copyFileSync(bank.cert, files().ca);
    tlsEnv = {
      TLS_CERT_FILE: files().cert,
      TLS_KEY_FILE: files().key,
      TLS_CA_FILE: files().ca,
      TLS_REQUIRED: 'true',
      TLS_RELOAD_INTERVAL_MS: String(RELOAD_MS),
      // Connections between the services are renewed every 2 s, so that after the certificates
      // change the services' own channels reconnect (and must present the renewed ones).
      GRPC_MAX_CONNECTION_AGE_MS: String(MAX_CONNECTION_AGE_MS),
    };
    t = await startPayments(2, { ...NO_RISK_RULES, GRPC_HEALTH_PORT: String(await freePort()) }, {}, tlsEnv);
  });
  afterAll(async () => {
    closers.forEach((c) => c());
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('completes a payment with every call between the services over mutual TLS', async () => {
    const product = await publishedDeposit(t, {});
    const alice = await verifiedCustomer(t);
    const bob = await verifiedCustomer(t);
    const from = await depositAccount(t, alice.id, product.productId, 10_000n);
    const to = await depositAccount(t, bob.id, product.productId, 0n);
    accounts = { from: from.id, to: to.id };
    const { payment } = await t.client.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: from.id,
      payeeAccountId: to.id,
      amount: 2_500n,
      currency: 'EUR',
      reference: 'over mutual TLS',
    });
    expect((await settled(t.client, payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
    expect((await balances(t.bank, to.id)).creditsPosted).toBe(2_500n);
    expect((await balances(t.bank, from.id)).debitsPosted).toBe(2_500n);
  });

  it('refuses, at the handshake, a plaintext client, a client without a certificate and one from another CA', async () => {
    await refusedAtHandshake(grpc.credentials.createInsecure());
    await refusedAtHandshake(grpc.credentials.createSsl(readFileSync(bank.cert)));
    await refusedAtHandshake(mtls(bank.cert, stranger.issue('stranger-client')));
    // Every service, not only the payment service: the ledger refuses a certificate-less caller too.
    const ledger = new AccountServiceClient(t.bank.address, grpc.credentials.createSsl(readFileSync(bank.cert)));
    closers.push(() => ledger.close());
    const err = (await promisify(ledger, await testToken())
      .getAccount({ accountId: randomUUID() }, { deadlineMs: 5_000 })
      .catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    // A client of the bank's CA is served.
    const ok = await paymentsWith(mtls(bank.cert, bank.issue('teller')));
    await expectServed(ok);
  });

  it('answers plaintext health probes on GRPC_HEALTH_PORT, and nothing else there', async () => {
    const port = t.app.server.healthPort!;
    expect(port).toBeGreaterThan(0);
    const health = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    closers.push(() => health.close());
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      (health as unknown as Record<string, (...a: unknown[]) => void>).check!(
        { service: 'liveness' },
        (err: Error | null, r: { status: string }) => (err ? reject(err) : resolve(r)),
      ),
    );
    expect(res.status).toBe('SERVING');
    const payments = promisify(
      new PaymentServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
      await testToken(PAYMENTS),
    );
    closers.push(() => payments.close());
    await expect(payments.getPayment({ paymentId: randomUUID() })).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  });

  it('keeps the certificates in use when the files are replaced by something invalid', async () => {
    writeFileSync(files().cert, 'not a certificate');
    await new Promise((r) => setTimeout(r, RELOAD_MS * 3));
    expect((await presented(t.app.server.port, bank.issue('probe-1'), bank.cert)).subject.CN).toBe('service');
    copyFileSync(join(dir, 'service.crt'), files().cert);
  });

  it('uses renewed certificates and a new CA for new connections, without a restart', async () => {
    // The bank moves to a new CA: new certificates for the services, a bundle of the new CA only.
    const next = testCa(dir, 'bank-next');
    const renewed = next.issue('service-renewed');
    const before = await presented(t.app.server.port, bank.issue('probe-2'), bank.cert);
    expect(before.subject.CN).toBe('service');
    copyFileSync(renewed.key, files().key);
    copyFileSync(renewed.cert, files().cert);
    copyFileSync(next.cert, files().ca);
    await expect
      .poll(async () => (await presented(t.app.server.port, next.issue('probe-3'), next.cert)).subject.CN, {
        timeout: 10_000,
        interval: RELOAD_MS,
      })
      .toBe('service-renewed');
    // The old CA's clients are refused now, the new CA's served.
    await refusedAtHandshake(mtls(bank.cert, bank.issue('old-teller')));
    const c = await paymentsWith(mtls(next.cert, next.issue('new-teller')));
    await expectServed(c);
    // Once the connections between the services made before the change have aged out, every
    // call between them is a new handshake that only the renewed certificates pass: a payment
    // still completes.
    await new Promise((r) => setTimeout(r, MAX_CONNECTION_AGE_MS * 2));
    const { payment } = await c.createPayment({
      idempotencyKey: randomUUID(),
      payerAccountId: accounts.from,
      payeeAccountId: accounts.to,
      amount: 500n,
      currency: 'EUR',
      reference: 'after the renewal',
    });
    expect((await settled(c, payment!.id)).status).toBe(S.PAYMENT_STATUS_COMPLETED);
  });

  it('does not start without certificates when TLS_REQUIRED is true: one line naming the variable (exit 78)', () => {
    const env = { ...t.env, TLS_CERT_FILE: '', TLS_KEY_FILE: '', TLS_CA_FILE: '', GRPC_PORT: '0' };
    const r = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'services/payment/src/command.ts', 'serve'],
      { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stdout + r.stderr).toBe(78);
    expect(r.stderr.trim()).toBe(
      'payment serve: invalid configuration: TLS_CERT_FILE: is required: TLS_REQUIRED is true (plaintext is refused)',
    );
  });
});
