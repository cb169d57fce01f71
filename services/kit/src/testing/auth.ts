// Keys and tokens for tests: one throwaway issuer and one key per service, made once per test
// process (every harness of a file shares them), and the environment that hands a service the
// JWKS and its own key, as the chart and the local launcher do.
import type { JWK } from 'jose';
import {
  DEFAULT_ISSUER,
  generateSigningKey,
  mintToken,
  serviceKid,
  signingKey,
  type MintOptions,
  type SigningKey,
} from '../auth.js';
import type { ServiceIdentity } from '../auth-setup.js';
import { ALL_AUDIENCES, SERVICES, type ServiceName } from '../identities.js';

export const TEST_ISSUER_KID = 'test-issuer';

export interface TestAuth {
  /** The issuer's signing key (kid test-issuer): what channel tokens are signed with. */
  issuer: SigningKey;
  /** The JWKS (JSON) with the issuer's and every service's public key. */
  jwks: string;
  /** Each service's private key (JWK JSON, kid service:<name>). */
  serviceJwks: Record<ServiceName, string>;
  /** A service's own signing key: to mint what a (compromised) service could mint. */
  serviceKey: (service: ServiceName) => Promise<SigningKey>;
  /** A service's identity, as the service builds it from its AUTH_SERVICE_KEY. */
  identity: (service: ServiceName) => Promise<ServiceIdentity>;
  /** AUTH_JWKS, plus AUTH_SERVICE_KEY of the service when one is named. */
  env: (service?: ServiceName) => Record<string, string>;
}

export async function createTestAuth(): Promise<TestAuth> {
  const issuer = await generateSigningKey(TEST_ISSUER_KID);
  const services = await Promise.all(SERVICES.map((s) => generateSigningKey(serviceKid(s))));
  const jwks = JSON.stringify({ keys: [issuer.publicJwk, ...services.map((k) => k.publicJwk)] });
  const serviceJwks = Object.fromEntries(
    SERVICES.map((s, i) => [s, JSON.stringify(services[i]!.privateJwk)]),
  ) as Record<ServiceName, string>;
  const serviceKey = (s: ServiceName) => signingKey(JSON.parse(serviceJwks[s]) as JWK & { kid: string });
  return {
    issuer: await signingKey(issuer.privateJwk),
    jwks,
    serviceJwks,
    serviceKey,
    identity: async (s) => ({ service: s, issuer: DEFAULT_ISSUER, key: await serviceKey(s) }),
    env: (s) => ({ AUTH_JWKS: jwks, ...(s ? { AUTH_SERVICE_KEY: serviceJwks[s] } : {}) }),
  };
}

let shared: Promise<TestAuth> | undefined;

/** The keys every harness of this test process uses. */
export function testAuth(): Promise<TestAuth> {
  return (shared ??= createTestAuth());
}

export const ALL_SCOPES = [
  'accounts:read',
  'accounts:write',
  'accounts:admin',
  'transfers:write',
  'ledger:read',
  'ledger:admin',
  'day:read',
  'day:admin',
];

/** A channel token from the test issuer, for every service unless an audience is named. */
export async function testToken(
  scopes: readonly string[] = ALL_SCOPES,
  customerId?: string,
  o: Partial<MintOptions> = {},
): Promise<string> {
  const { issuer } = await testAuth();
  return mintToken(issuer, {
    channel: 'test',
    scopes,
    audience: ALL_AUDIENCES,
    ...(customerId ? { customerId } : {}),
    ...o,
  });
}
