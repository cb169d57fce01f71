// Throwaway certificate authorities for tests, made with the openssl CLI: a CA, and certificates
// it signs for 127.0.0.1 and localhost usable as server and client certificates (as cert-manager
// issues them for the chart), written as PEM files the services read (TLS_*_FILE).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';

export interface TestCertificate {
  cert: string;
  key: string;
}

export interface TestCa extends TestCertificate {
  name: string;
  /** A certificate and key signed by this CA, written to `<dir>/<name>.crt` and `.key`. */
  issue(name: string, o?: { days?: number }): TestCertificate;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
const serial = () => `0x${randomBytes(8).toString('hex')}`;

/** A new CA (EC P-256, valid one day) in dir: `<dir>/<name>-ca.crt` and `.key`. */
export function testCa(dir: string, name: string): TestCa {
  const ca = { cert: join(dir, `${name}-ca.crt`), key: join(dir, `${name}-ca.key`) };
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', ca.key, '-out', ca.cert, '-days', '1', '-subj', `/O=corebank test/CN=${name} CA`,
    '-set_serial', serial(),
  ]); // prettier-ignore
  return {
    name,
    ...ca,
    issue(leaf, o = {}) {
      const out = { cert: join(dir, `${leaf}.crt`), key: join(dir, `${leaf}.key`) };
      const csr = join(dir, `${leaf}.csr`);
      const ext = join(dir, `${leaf}.ext`);
      writeFileSync(
        ext,
        'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' +
          'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
      );
      openssl([
        'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', out.key, '-out', csr, '-subj', `/O=corebank test/CN=${leaf}`,
      ]); // prettier-ignore
      openssl([
        'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial(),
        '-days', String(o.days ?? 1), '-extfile', ext, '-out', out.cert,
      ]); // prettier-ignore
      return out;
    },
  };
}

/**
 * The credentials a test client uses towards services started with `env`: plaintext, or when
 * env sets TLS_CERT_FILE, TLS verified against TLS_CA_FILE presenting that certificate.
 */
export function testChannelCredentials(env: Record<string, string | undefined>): grpc.ChannelCredentials {
  if (!env.TLS_CERT_FILE) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    env.TLS_CA_FILE ? readFileSync(env.TLS_CA_FILE) : null,
    readFileSync(env.TLS_KEY_FILE!),
    readFileSync(env.TLS_CERT_FILE),
  );
}
