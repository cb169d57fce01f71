// Bearer tokens: HS256 JWTs naming the calling channel (sub), its scopes, and optionally the
// one customer the token may act for. Verified on every RPC by the server bootstrap.
import { SignJWT, jwtVerify } from 'jose';
import { DomainError } from './errors.js';

export interface Principal {
  channel: string;
  scopes: ReadonlySet<string>;
  /** When set, the caller may act only on this customer's resources. */
  customerId?: string;
}

export const ISSUER = 'corebank';

export interface MintOptions {
  channel: string;
  scopes: string[];
  customerId?: string;
  ttlSeconds?: number;
}

export async function mintToken(key: Uint8Array, o: MintOptions): Promise<string> {
  return new SignJWT({ scope: o.scopes.join(' '), ...(o.customerId ? { customer_id: o.customerId } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(o.channel)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${o.ttlSeconds ?? 3600}s`)
    .sign(key);
}

/**
 * Channels send the same token on every call: a verified token is remembered until it expires,
 * so the signature is checked once per token, not once per RPC. Bounded, oldest evicted first.
 */
const verified = new WeakMap<Uint8Array, Map<string, { principal: Principal; expiresAt: number }>>();
const CACHE_MAX = 10_000;

export async function verifyToken(key: Uint8Array, authorization: string | undefined): Promise<Principal> {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!m) throw new DomainError('UNAUTHENTICATED', 'MISSING_TOKEN', 'authorization: a bearer token is required');
  const token = m[1]!;
  let cache = verified.get(key);
  if (!cache) verified.set(key, (cache = new Map()));
  const hit = cache.get(token);
  if (hit && hit.expiresAt > Date.now()) return hit.principal;
  const principal = await verifySignature(key, token);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  const { expiresAt, ...rest } = principal;
  cache.set(token, { principal: rest, expiresAt });
  return rest;
}

async function verifySignature(key: Uint8Array, token: string): Promise<Principal & { expiresAt: number }> {
  try {
    const { payload } = await jwtVerify(token, key, { issuer: ISSUER, algorithms: ['HS256'] });
    if (!payload.sub) throw new Error('no subject');
    return {
      expiresAt: (payload.exp ?? 0) * 1000,
      channel: payload.sub,
      scopes: new Set(
        String(payload.scope ?? '')
          .split(' ')
          .filter(Boolean),
      ),
      ...(typeof payload.customer_id === 'string' ? { customerId: payload.customer_id } : {}),
    };
  } catch {
    throw new DomainError('UNAUTHENTICATED', 'INVALID_TOKEN', 'authorization: the bearer token is invalid or expired');
  }
}

export function requireScope(p: Principal, scope: string): void {
  if (!p.scopes.has(scope)) {
    throw new DomainError(
      'PERMISSION_DENIED',
      'MISSING_SCOPE',
      `the channel "${p.channel}" lacks the scope ${scope}`,
      [],
      {
        scope,
      },
    );
  }
}

/** A customer-bound token may only touch its own customer's resources. */
export function requireCustomer(p: Principal, customerId: string, field: string): void {
  if (p.customerId !== undefined && p.customerId !== customerId) {
    throw new DomainError('PERMISSION_DENIED', 'CUSTOMER_MISMATCH', `${field}: the token acts for another customer`);
  }
}
