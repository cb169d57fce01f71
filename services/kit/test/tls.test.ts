// The kit's TLS on its own, on a bare gRPC server with the health service: what the configuration
// refuses (naming the variable), server-only TLS and mutual TLS through serverCredentials and
// channelCredentials, and reloads that keep the previous certificates when the files are wrong.
// (services/payment/test/tls.test.ts runs the whole bank over mutual TLS.)
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { channelCredentials, ConfigError, registry, serverCredentials, TlsFiles, tlsFromConfig } from '@corebank/kit';
import { testCa, type TestCa } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const RELOAD_MS = 200;
const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

let dir: string;
let ca: TestCa;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'corebank-kit-tls-'));
  ca = testCa(dir, 'kit');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A bare server with the health service on a free port, with these credentials. */
async function serve(creds: grpc.ServerCredentials) {
  const server = new grpc.Server();
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, stop: () => server.forceShutdown() };
}

/** The health status the server at port answers with these credentials, or the call's status code. */
function check(port: number, creds: grpc.ChannelCredentials): Promise<string | number> {
  const client = new HealthClient(`127.0.0.1:${port}`, creds);
  return new Promise<string | number>((resolve) =>
    (client as unknown as Record<string, (...a: unknown[]) => void>).check!(
      { service: '' },
      { deadline: Date.now() + 5_000 },
      (err: grpc.ServiceError | null, res: { status: string }) => resolve(err ? err.code : res.status),
    ),
  ).finally(() => client.close());
}

describe('TLS configuration', () => {
  const base = { tlsCertFile: '', tlsKeyFile: '', tlsCaFile: '', tlsRequired: false, tlsReloadIntervalMs: RELOAD_MS };
  const refused = (c: Partial<typeof base>, variable: string, message: RegExp) => {
    let err: unknown;
    try {
      tlsFromConfig({ ...base, ...c });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as Error).message).toMatch(message);
  };

  it('is plaintext without files, and refused when TLS_REQUIRED says otherwise', () => {
    expect(tlsFromConfig(base)).toBeUndefined();
    refused({ tlsRequired: true }, 'TLS_CERT_FILE', /TLS_REQUIRED is true \(plaintext is refused\)/);
    const own = ca.issue('config-service');
    refused(
      { tlsRequired: true, tlsCertFile: own.cert, tlsKeyFile: own.key },
      'TLS_CA_FILE',
      /client certificates must be verified/,
    );
  });

  it('names the variable of a missing, unreadable, mismatched or expired file', () => {
    const own = ca.issue('config-a');
    const other = ca.issue('config-b');
    refused({ tlsCertFile: own.cert }, 'TLS_KEY_FILE', /required when TLS_CERT_FILE is set/);
    refused({ tlsCaFile: ca.cert }, 'TLS_CERT_FILE', /required when TLS_CA_FILE is set/);
    refused({ tlsCertFile: join(dir, 'nope.crt'), tlsKeyFile: own.key }, 'TLS_CERT_FILE', /no such file/);
    refused({ tlsCertFile: own.key, tlsKeyFile: own.key }, 'TLS_CERT_FILE', /no PEM certificate/);
    refused({ tlsCertFile: own.cert, tlsKeyFile: own.cert }, 'TLS_KEY_FILE', /not a PEM private key/);
    refused({ tlsCertFile: own.cert, tlsKeyFile: other.key }, 'TLS_KEY_FILE', /does not belong to the certificate/);
    refused({ tlsCertFile: own.cert, tlsKeyFile: own.key, tlsCaFile: own.key }, 'TLS_CA_FILE', /no PEM certificate/);
    const expired = ca.issue('config-expired', { days: 0 });
    refused({ tlsCertFile: expired.cert, tlsKeyFile: expired.key }, 'TLS_CERT_FILE', /the certificate expired on/);
    const files = tlsFromConfig({ ...base, tlsCertFile: own.cert, tlsKeyFile: own.key, tlsCaFile: ca.cert })!;
    expect(files.mutual).toBe(true);
    expect(files.current.subject).toContain('CN=config-a');
  });
});

describe('TLS on a gRPC server', () => {
  it('without a CA bundle: TLS, no client certificate asked for', async () => {
    const leaf = ca.issue('server-only');
    const files = new TlsFiles({ ...leaf, ca: '' }, { intervalMs: RELOAD_MS });
    expect(files.mutual).toBe(false);
    const s = await serve(serverCredentials(files));
    try {
      expect(await check(s.port, grpc.credentials.createSsl(readFileSync(ca.cert)))).toBe('SERVING');
      expect(await check(s.port, grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
    } finally {
      s.stop();
    }
  });

  it('with a CA bundle: mutual TLS, and the kit\u2019s own channel credentials pass it', async () => {
    const server = new TlsFiles({ ...ca.issue('mutual-server'), ca: ca.cert }, { intervalMs: RELOAD_MS });
    const client = new TlsFiles({ ...ca.issue('mutual-client'), ca: ca.cert }, { intervalMs: RELOAD_MS });
    const s = await serve(serverCredentials(server));
    try {
      expect(await check(s.port, channelCredentials(client))).toBe('SERVING');
      expect(await check(s.port, grpc.credentials.createSsl(readFileSync(ca.cert)))).toBe(grpc.status.UNAVAILABLE);
      const stranger = testCa(dir, 'kit-stranger').issue('stranger');
      expect(
        await check(s.port, channelCredentials(new TlsFiles({ ...stranger, ca: ca.cert }, { intervalMs: 1000 }))),
      ).toBe(grpc.status.UNAVAILABLE);
      expect(await check(s.port, grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
    } finally {
      s.stop();
    }
  });

  it('reloads changed files, and keeps the certificates in use when the new ones are wrong', async () => {
    const first = ca.issue('reload-1');
    const second = ca.issue('reload-2');
    const live = { cert: join(dir, 'reload.crt'), key: join(dir, 'reload.key'), ca: ca.cert };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const errors: string[] = [];
    const reloaded: string[] = [];
    const files = new TlsFiles(live, {
      intervalMs: RELOAD_MS,
      onError: (e) => errors.push(e.message),
      onReload: (m) => reloaded.push(m.subject),
    });
    expect(files.reload()).toBe(false);
    // A renewal caught half-way (new certificate, old key) is refused, once, until it is whole.
    copyFileSync(second.cert, live.cert);
    expect(files.reload()).toBe(false);
    expect(files.reload()).toBe(false);
    expect(errors).toEqual([
      'invalid configuration: TLS_KEY_FILE: does not belong to the certificate in TLS_CERT_FILE',
    ]);
    expect(files.current.subject).toContain('CN=reload-1');
    copyFileSync(second.key, live.key);
    expect(files.reload()).toBe(true);
    expect(files.current.subject).toContain('CN=reload-2');
    // The expiry of the certificate in use, for the CorebankTlsCertificateExpiring alert.
    const expiry = await registry.getSingleMetric('tls_certificate_expiry_timestamp_seconds')!.get();
    expect(expiry.values[0]!.value).toBe(files.current.notAfter.getTime() / 1000);
    expect(reloaded).toHaveLength(1);
    writeFileSync(live.cert, 'garbage');
    expect(files.reload()).toBe(false);
    expect(files.current.subject).toContain('CN=reload-2');
    expect(errors).toHaveLength(2);
  });
});
