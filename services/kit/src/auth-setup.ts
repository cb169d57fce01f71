// A service's side of authentication, from its configuration: the verifier of its callers'
// tokens (the JWKS) and, for services that call others, its own identity (its signing key).
import { KeyStore, serviceOfKid, signingKey, TokenVerifier, type JwksSource, type SigningKey } from './auth.js';
import { ConfigError } from './config.js';
import type { Logger } from './log.js';
import { tlsFromConfig, type TlsConfig, type TlsFiles } from './grpc/tls.js';
import type { ServiceName } from './identities.js';

/** Who a service is when it calls another: its name, its key, the issuer its tokens name. */
export interface ServiceIdentity {
  service: ServiceName;
  issuer: string;
  key: SigningKey;
  /** The certificates it presents and verifies servers with (mutual TLS); absent: plaintext. */
  tls?: TlsFiles;
}

export async function tokenVerifier(
  service: ServiceName,
  config: { authJwks: JwksSource; authIssuer: string },
  log?: Logger,
  reloadMs?: number,
): Promise<TokenVerifier> {
  const keys = await KeyStore.create(config.authJwks, {
    ...(reloadMs !== undefined ? { reloadMs } : {}),
    onError: (err) => log?.error({ err }, 'AUTH_JWKS: the key file could not be reloaded; the previous keys stay'),
  });
  return new TokenVerifier({ keys, service, issuer: config.authIssuer });
}

export async function serviceIdentity(
  service: ServiceName,
  config: { authServiceKey: Parameters<typeof signingKey>[0]; authIssuer: string } & Partial<TlsConfig>,
  log?: Logger,
): Promise<ServiceIdentity> {
  const kid = config.authServiceKey.kid;
  if (serviceOfKid(kid) !== service) {
    throw new ConfigError('AUTH_SERVICE_KEY', `the key id must be service:${service}[:<version>], got "${kid}"`);
  }
  const tls = config.tlsCertFile !== undefined ? tlsFromConfig(config as TlsConfig, log) : undefined;
  return { service, issuer: config.authIssuer, key: await signingKey(config.authServiceKey), ...(tls ? { tls } : {}) };
}
