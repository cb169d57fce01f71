// TLS and mutual TLS for the gRPC server and for the clients services call one another with,
// from certificate files (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE) that are re-read while the
// service runs, so a renewed certificate (cert-manager, a rotated Secret) is used without a
// restart. No file configured: plaintext, as `npm run up` runs; TLS_REQUIRED refuses that.
//
// grpc-js (1.14) takes certificates from a CertificateProvider (grpc.experimental): the server
// calls setSecureContext on each update, so new connections get the new certificate; a channel
// builds the secure context of each new connection from the latest update. TlsFiles is that
// provider for our files. Unlike grpc-js's FileWatcherCertificateProvider it checks what it reads
// (PEM, the key belongs to the certificate, not expired, a CA bundle of certificates) and keeps
// the previous certificates when a reload finds something wrong, where the file watcher would
// drop every new connection until the files were right again.
import * as grpc from '@grpc/grpc-js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { HealthImplementation } from 'grpc-health-check';
import { ConfigError } from '../config.js';
import type { Logger } from '../log.js';
import { tlsCertificateExpiry } from '../metrics.js';

/** The TLS part of a service's configuration (baseSpec, config.ts). */
export interface TlsConfig {
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsCaFile: string;
  tlsRequired: boolean;
  tlsReloadIntervalMs: number;
}

/** What a TLS endpoint presents and trusts, as PEM. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** The CA bundle; absent: no TLS_CA_FILE (clients are not asked for certificates). */
  ca?: Buffer;
  /** When the certificate stops being valid. */
  notAfter: Date;
  subject: string;
}

interface Paths {
  cert: string;
  key: string;
  ca: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function read(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(variable, `cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
}

function certificates(pem: Buffer, variable: string): X509Certificate[] {
  const blocks = pem.toString('utf8').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new ConfigError(variable, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new ConfigError(variable, `certificate ${i + 1} is not a valid X.509 certificate`);
    }
  });
}

/**
 * Reads and checks the files; a fault is a ConfigError naming the variable (at start-up the
 * service refuses to start with it, on a reload the previous certificates stay).
 */
export function readTlsMaterial(paths: Paths, now = new Date()): TlsMaterial {
  const cert = read(paths.cert, 'TLS_CERT_FILE');
  const key = read(paths.key, 'TLS_KEY_FILE');
  const [leaf] = certificates(cert, 'TLS_CERT_FILE');
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError('TLS_KEY_FILE', 'is not a PEM private key');
  }
  if (!leaf!.checkPrivateKey(privateKey)) {
    throw new ConfigError('TLS_KEY_FILE', 'does not belong to the certificate in TLS_CERT_FILE');
  }
  const notAfter = new Date(leaf!.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    throw new ConfigError('TLS_CERT_FILE', `the certificate expired on ${notAfter.toISOString()}`);
  }
  let ca: Buffer | undefined;
  if (paths.ca) {
    ca = read(paths.ca, 'TLS_CA_FILE');
    certificates(ca, 'TLS_CA_FILE');
  }
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    throw new ConfigError('TLS_CERT_FILE', `OpenSSL refuses the certificate, key or CA: ${(err as Error).message}`);
  }
  return { cert, key, ...(ca ? { ca } : {}), notAfter, subject: leaf!.subject.replace(/\n/g, ', ') };
}

const same = (a: TlsMaterial, b: TlsMaterial) =>
  a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca && b.ca ? a.ca.equals(b.ca) : a.ca === b.ca);

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * The certificate, key and CA bundle of one service, from files re-read every `intervalMs` while
 * a server or channel uses them. Changed and valid files replace the certificates in use (new
 * connections get them; open ones keep theirs until they reconnect); invalid ones are reported
 * and ignored.
 */
export class TlsFiles implements grpc.experimental.CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | undefined;
  /** The last reload fault reported (each distinct fault is logged once, not at every check). */
  private fault: string | undefined;

  constructor(
    private readonly paths: Paths,
    private readonly o: {
      intervalMs: number;
      onReload?: (m: TlsMaterial) => void;
      onError?: (err: Error) => void;
    },
  ) {
    this.material = readTlsMaterial(paths);
    tlsCertificateExpiry.set(this.material.notAfter.getTime() / 1000);
  }

  /** The certificates in use now. */
  get current(): TlsMaterial {
    return this.material;
  }

  /** Whether client certificates are required and verified (a CA bundle is configured). */
  get mutual(): boolean {
    return this.material.ca !== undefined;
  }

  /** Re-reads the files now; true when the certificates in use changed. */
  reload(): boolean {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(this.paths);
    } catch (err) {
      if ((err as Error).message !== this.fault) this.o.onError?.(err as Error);
      this.fault = (err as Error).message;
      return false;
    }
    this.fault = undefined;
    if (same(next, this.material)) return false;
    this.material = next;
    tlsCertificateExpiry.set(next.notAfter.getTime() / 1000);
    this.o.onReload?.(next);
    for (const l of this.identityListeners) l(this.identityUpdate());
    for (const l of this.caListeners) l(this.caUpdate());
    return true;
  }

  private identityUpdate() {
    return { certificate: this.material.cert, privateKey: this.material.key };
  }

  /** The CA bundle, or the system's roots (to verify servers) when no TLS_CA_FILE is set. */
  private caUpdate() {
    return { caCertificate: this.material.ca ?? Buffer.from(rootCertificates.join('\n')) };
  }

  private watch() {
    if (this.timer || this.caListeners.size + this.identityListeners.size === 0) return;
    this.timer = setInterval(() => this.reload(), this.o.intervalMs);
    this.timer.unref();
  }

  private unwatch() {
    if (this.caListeners.size + this.identityListeners.size > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  // grpc-js registers its watchers on the server after adding these listeners: the first update
  // must come on the next tick, as grpc-js's own provider does it, or the server never sees it.
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    this.watch();
    process.nextTick(() => this.caListeners.has(l) && l(this.caUpdate()));
  }
  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
    this.unwatch();
  }
  addIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.add(l);
    this.watch();
    process.nextTick(() => this.identityListeners.has(l) && l(this.identityUpdate()));
  }
  removeIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.delete(l);
    this.unwatch();
  }
}

/** One provider per set of files in a process: the server and every client share its reloads. */
const providers = new Map<string, TlsFiles>();

/**
 * The service's certificates from its configuration, or undefined for plaintext (no file set and
 * TLS_REQUIRED false). Throws a ConfigError naming the variable for a half-configured or missing
 * setup, so the service refuses to start.
 */
export function tlsFromConfig(config: TlsConfig, log?: Logger): TlsFiles | undefined {
  const { tlsCertFile: cert, tlsKeyFile: key, tlsCaFile: ca } = config;
  if (config.tlsRequired) {
    if (!cert) throw new ConfigError('TLS_CERT_FILE', 'is required: TLS_REQUIRED is true (plaintext is refused)');
    if (!ca)
      throw new ConfigError(
        'TLS_CA_FILE',
        'is required: TLS_REQUIRED is true (client certificates must be verified against a CA bundle)',
      );
  }
  if (!cert && !key && !ca) return undefined;
  if (!cert) throw new ConfigError('TLS_CERT_FILE', `is required when ${key ? 'TLS_KEY_FILE' : 'TLS_CA_FILE'} is set`);
  if (!key) throw new ConfigError('TLS_KEY_FILE', 'is required when TLS_CERT_FILE is set');
  const id = JSON.stringify([cert, key, ca, config.tlsReloadIntervalMs]);
  let files = providers.get(id);
  if (!files) {
    files = new TlsFiles(
      { cert, key, ca },
      {
        intervalMs: config.tlsReloadIntervalMs,
        onReload: (m) =>
          log?.info({ subject: m.subject, not_after: m.notAfter.toISOString() }, 'TLS certificates reloaded'),
        onError: (err) =>
          log?.error({ err: err.message }, 'TLS certificates could not be reloaded; the previous ones stay'),
      },
    );
    providers.set(id, files);
  }
  return files;
}

/**
 * Server credentials: plaintext without certificates; TLS with them; mutual TLS (a client
 * certificate signed by the CA bundle is required, checked in the handshake) with a CA bundle.
 */
export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  // grpc-js's declaration names its first two parameters the wrong way round: the first is the
  // identity provider (the server's own certificate), the second the CA provider (null: no client
  // certificates asked for), as its implementation uses them.
  return grpc.experimental.createCertificateProviderServerCredentials(tls, tls.mutual ? tls : null, tls.mutual);
}

/**
 * Channel credentials of a service calling another: plaintext without certificates; with them,
 * TLS that verifies the server against the CA bundle (the system's roots without one) and
 * presents this service's certificate.
 */
export function channelCredentials(tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.experimental.createCertificateProviderChannelCredentials(tls, tls, {});
}

/**
 * The listener kubelet probes when TLS is on: plaintext, the health service only (no other
 * service, no reflection). Kubernetes' native gRPC probe speaks neither TLS nor mutual TLS, so it
 * cannot reach the main port then; it answers only SERVING / NOT_SERVING.
 */
export async function startHealthListener(
  health: HealthImplementation,
  host: string,
  port: number,
): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { port: bound, server };
}
