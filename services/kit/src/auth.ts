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

export async function verifyToken(key: Uint8Array, authorization: string | undefined): Promise<Principal> {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!m) throw new DomainError('UNAUTHENTICATED', 'MISSING_TOKEN', 'authorization: a bearer token is required');
  try {
    const { payload } = await jwtVerify(m[1]!, key, { issuer: ISSUER, algorithms: ['HS256'] });
    if (!payload.sub) throw new Error('no subject');
    return {
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
