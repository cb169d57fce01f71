// Bearer tokens: JWTs signed with asymmetric keys (ES256 or EdDSA) and verified against a JWKS.
//
// Two kinds of signing keys are in the JWKS, told apart by their key id:
// - issuer keys (any kid not starting with `service:`): held by the bank's token issuer only (the
//   `npm run token` CLI or the partner bank's own issuer), never by a service. Channel tokens
//   (mobile backend, teller, partner APIs) are signed with them.
// - service keys (kid `service:<name>` or `service:<name>:<version>`): each service holds its
//   own private key and signs the tokens it calls other services with. A verifier accepts such a
//   token only when its subject is that service and its scopes are within what identities.ts
//   allows that service towards the verifying one: a compromised payment pod can mint nothing but
//   payment's own narrow tokens. (No token server: nothing to run, scale or reach on every call,
//   and no issuer key in the cluster at all.)
//
// A service calling on a customer's behalf forwards the customer's own verified token in the
// `corebank-on-behalf-of` header; the downstream service verifies it too (its audience must name
// the calling service) and binds the call to that customer, so `requireCustomer` holds on every
// hop.
//
// Every failure is UNAUTHENTICATED with its own reason, checked in this order: MISSING_TOKEN,
// MALFORMED_TOKEN, ALGORITHM_NOT_ALLOWED, MISSING_KEY_ID, UNKNOWN_KEY, BAD_SIGNATURE,
// WRONG_ISSUER, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, WRONG_AUDIENCE; then for service tokens
// SERVICE_IDENTITY_MISMATCH, or PERMISSION_DENIED SERVICE_SCOPE_NOT_ALLOWED.
import { promises as fs, readFileSync } from 'node:fs';
import {
  compactVerify,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
  type KeyObject,
} from 'jose';
import { DomainError } from './errors.js';
import { allowedScopes, audienceOf } from './identities.js';

export interface Principal {
  /** The calling channel (the token's subject), or the calling service's name. */
  channel: string;
  scopes: ReadonlySet<string>;
  /** When set, the caller may act only on this customer's resources. */
  customerId?: string;
  /** Set when the caller authenticated as a corebank service identity (a `service:` key). */
  service?: string;
  /** The channel a service acts for, when it forwarded that channel's token. */
  onBehalfOf?: string;
}

export const DEFAULT_ISSUER = 'corebank';
export const ALGORITHMS = ['ES256', 'EdDSA'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
/** Metadata header that carries the token of the channel a service calls for. */
export const ON_BEHALF_OF_HEADER = 'corebank-on-behalf-of';
/** Clock skew tolerated on exp, nbf and iat. */
export const CLOCK_TOLERANCE_S = 30;
/** The longest token accepted at all (bytes): anything longer is malformed, not worth parsing. */
const MAX_TOKEN_LENGTH = 8192;

const SERVICE_KID = /^service:([a-z][a-z0-9-]*)(?::[A-Za-z0-9._-]+)?$/;
export const serviceKid = (service: string, version?: string) => `service:${service}${version ? `:${version}` : ''}`;
/** The service a key id belongs to, or undefined for an issuer key. */
export const serviceOfKid = (kid: string): string | undefined =>
  kid.startsWith('service:') ? (SERVICE_KID.exec(kid)?.[1] ?? '') : undefined;

const unauthenticated = (reason: string, message: string) =>
  new DomainError('UNAUTHENTICATED', reason, `authorization: ${message}`);

// ---------------------------------------------------------------------------------------------
// Keys

/** The algorithm a JWK signs with (ES256 on P-256, EdDSA on Ed25519), or an error naming why not. */
export function algorithmOf(jwk: JWK): Algorithm {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && (jwk.alg ?? 'ES256') === 'ES256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && ['EdDSA', 'Ed25519'].includes(jwk.alg ?? 'EdDSA')) return 'EdDSA';
  throw new Error(
    `key "${String(jwk.kid ?? '')}": only ES256 (EC P-256) and EdDSA (OKP Ed25519) keys are allowed, got kty ${String(jwk.kty)} crv ${String(jwk.crv)} alg ${String(jwk.alg ?? '')}`,
  );
}

export interface PublicKeyEntry {
  kid: string;
  alg: Algorithm;
  jwk: JWK;
}

/** Parses and checks a JWKS document: public ES256/EdDSA keys only, each with a unique kid. */
export function parseJwks(text: string): PublicKeyEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('is not JSON');
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('must be a JWKS: {"keys":[...]}');
  const out: PublicKeyEntry[] = [];
  for (const k of keys as JWK[]) {
    if (typeof k !== 'object' || k === null) throw new Error('every key must be an object');
    if (typeof k.kid !== 'string' || !k.kid) throw new Error('every key needs a kid');
    if (out.some((e) => e.kid === k.kid)) throw new Error(`kid "${k.kid}" appears twice`);
    if ('d' in k) throw new Error(`key "${k.kid}" holds private key material: a JWKS holds public keys only`);
    if (k.kid.startsWith('service:') && !SERVICE_KID.test(k.kid)) {
      throw new Error(`key "${k.kid}": a service key id is service:<name> or service:<name>:<version>`);
    }
    if (k.use !== undefined && k.use !== 'sig') throw new Error(`key "${k.kid}": use must be sig`);
    const alg = algorithmOf(k);
    if (typeof k.x !== 'string' || (alg === 'ES256' && typeof k.y !== 'string')) {
      throw new Error(`key "${k.kid}" lacks its coordinates`);
    }
    out.push({ kid: k.kid, alg, jwk: { ...k, alg } });
  }
  return out;
}

/** Parses a private signing key (a JWK with d and kid). */
export function parseSigningJwk(text: string): JWK & { kid: string } {
  let k: JWK;
  try {
    k = JSON.parse(text) as JWK;
  } catch {
    throw new Error('is not a JSON JWK');
  }
  if (typeof k !== 'object' || k === null || typeof k.d !== 'string') throw new Error('must be a private JWK (with d)');
  if (typeof k.kid !== 'string' || !k.kid) throw new Error('needs a kid');
  algorithmOf(k);
  return k as JWK & { kid: string };
}

/** Inline content (starts with `{`) or the path of a file holding it. */
export function readInlineOrFile(raw: string): { text: string; path?: string } {
  const v = raw.trim();
  if (v.startsWith('{')) return { text: v };
  try {
    return { text: readFileSync(v, 'utf8'), path: v };
  } catch (err) {
    throw new Error(`cannot read the file ${v}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export interface SigningKey {
  kid: string;
  alg: Algorithm;
  key: CryptoKey | KeyObject;
}

export async function signingKey(jwk: JWK & { kid: string }): Promise<SigningKey> {
  const alg = algorithmOf(jwk);
  return { kid: jwk.kid, alg, key: (await importJWK({ ...jwk, alg }, alg)) as CryptoKey | KeyObject };
}

/** A new key pair: the private JWK (for the issuer or one service) and the public JWK (for the JWKS). */
export async function generateSigningKey(
  kid: string,
  alg: Algorithm = 'ES256',
): Promise<{ privateJwk: JWK & { kid: string }; publicJwk: JWK & { kid: string } }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const meta = { kid, alg, use: 'sig' };
  return {
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
    publicJwk: { ...(await exportJWK(publicKey)), ...meta },
  };
}

// ---------------------------------------------------------------------------------------------
// Minting

export interface MintOptions {
  /** The subject: the channel, or the service for a service's own tokens. */
  channel: string;
  scopes: readonly string[];
  /** The services the token is for (`corebank.account`, ...): one, or every one a channel calls. */
  audience: string | readonly string[];
  customerId?: string;
  /** Lifetime in seconds (default 900). */
  ttlSeconds?: number;
  issuer?: string;
  /** Seconds since the epoch; defaults: iat now, no nbf. */
  issuedAt?: number;
  notBefore?: number;
}

export async function mintToken(key: SigningKey, o: MintOptions): Promise<string> {
  const iat = o.issuedAt ?? Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ scope: o.scopes.join(' '), ...(o.customerId ? { customer_id: o.customerId } : {}) })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setSubject(o.channel)
    .setIssuer(o.issuer ?? DEFAULT_ISSUER)
    .setAudience(
      typeof o.audience === 'string' ? o.audience : o.audience.length === 1 ? o.audience[0]! : [...o.audience],
    )
    .setIssuedAt(iat)
    .setExpirationTime(iat + (o.ttlSeconds ?? 900));
  if (o.notBefore !== undefined) jwt.setNotBefore(o.notBefore);
  return jwt.sign(key.key);
}

// ---------------------------------------------------------------------------------------------
// The verifier's key set

export type JwksSource = { keys: PublicKeyEntry[]; path?: string };

/**
 * The public keys a service verifies with. From a file, the set is re-read when the file changes
 * (its modification time, size or inode; Kubernetes swaps a mounted Secret's files): looked at
 * no more than every `reloadMs`, and at once (at most once a second) when a token names a kid the
 * set lacks. A file that fails to parse keeps the previous keys (and is logged). Inline keys (an
 * environment variable) change only with a restart.
 */
export class KeyStore {
  private keys = new Map<string, { alg: Algorithm; key: CryptoKey | KeyObject }>();
  private checkedAt = 0;
  private forcedAt = 0;
  private signature = '';
  private loading?: Promise<void>;
  /** The JWK each kid was imported from: an unchanged key keeps its imported object. */
  private jwks = new Map<string, JWK>();

  private constructor(
    private readonly path: string | undefined,
    private readonly reloadMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  static async create(
    source: JwksSource,
    o: { reloadMs?: number; onError?: (err: unknown) => void } = {},
  ): Promise<KeyStore> {
    const s = new KeyStore(source.path, o.reloadMs ?? 5_000, o.onError ?? (() => undefined));
    await s.install(source.keys);
    if (source.path) s.signature = await fileSignature(source.path).catch(() => '');
    s.checkedAt = Date.now();
    return s;
  }

  get kids(): string[] {
    return [...this.keys.keys()];
  }

  private async install(entries: PublicKeyEntry[]): Promise<void> {
    const next = new Map<string, { alg: Algorithm; key: CryptoKey | KeyObject }>();
    for (const e of entries) {
      // An unchanged key keeps its object, so tokens cached under it stay valid.
      const old = this.keys.get(e.kid);
      const same = old && JSON.stringify(this.jwks.get(e.kid)) === JSON.stringify(e.jwk);
      next.set(e.kid, same ? old : { alg: e.alg, key: (await importJWK(e.jwk, e.alg)) as CryptoKey | KeyObject });
      this.jwks.set(e.kid, e.jwk);
    }
    for (const kid of this.jwks.keys()) if (!next.has(kid)) this.jwks.delete(kid);
    this.keys = next;
  }

  /** Re-reads the file when it changed (no more than every reloadMs unless forced). */
  async refresh(force = false): Promise<void> {
    if (!this.path) return;
    const now = Date.now();
    if (!force && now - this.checkedAt < this.reloadMs) return;
    if (force && now - this.forcedAt < 1_000) return;
    if (force) this.forcedAt = now;
    this.checkedAt = now;
    this.loading ??= (async () => {
      const path = this.path!;
      try {
        const sig = await fileSignature(path);
        if (sig === this.signature) return;
        const entries = parseJwks(await fs.readFile(path, 'utf8'));
        await this.install(entries);
        this.signature = sig;
      } catch (err) {
        this.onError(err);
      }
    })().finally(() => (this.loading = undefined));
    await this.loading;
  }

  /** The key of a kid as the set holds it now. */
  current(kid: string): { alg: Algorithm; key: CryptoKey | KeyObject } | undefined {
    return this.keys.get(kid);
  }

  /** The key of a kid, looking at the file again when the kid is unknown. */
  async find(kid: string): Promise<{ alg: Algorithm; key: CryptoKey | KeyObject } | undefined> {
    await this.refresh();
    if (!this.keys.has(kid)) await this.refresh(true);
    return this.keys.get(kid);
  }
}

async function fileSignature(path: string): Promise<string> {
  const st = await fs.stat(path);
  return `${st.mtimeMs}:${st.size}:${st.ino}`;
}

// ---------------------------------------------------------------------------------------------
// Verification

interface Verified {
  principal: Principal;
  token: string;
  kid: string;
  key: CryptoKey | KeyObject;
  expiresAt: number;
}

/** Principals made from a channel's token keep that token, to forward it on the customer's behalf. */
const bearers = new WeakMap<Principal, string>();

/** The customer-bound token a call made for this principal forwards (undefined when not bound). */
export function customerTokenOf(p: Principal): string | undefined {
  return p.customerId === undefined ? undefined : bearers.get(p);
}

export interface VerifierOptions {
  keys: KeyStore;
  /** The service that verifies (its audience is `corebank.<service>`). */
  service: string;
  issuer?: string;
  /** Verified tokens remembered (oldest evicted first). */
  cacheSize?: number;
}

/**
 * Verifies the bearer token of every RPC. Channels send the same token on every call: a verified
 * token is remembered until it expires, keyed by the token and the audience it was checked for,
 * together with the key object that verified it. A hit counts only while the key set still holds
 * that very key under that kid: a key dropped from the JWKS file stops its tokens at the next
 * look at the file (within the reload interval, 5 s by default).
 */
export class TokenVerifier {
  private readonly cache = new Map<string, Verified>();
  private readonly issuer: string;
  private readonly audience: string;
  private readonly cacheSize: number;

  constructor(private readonly o: VerifierOptions) {
    this.issuer = o.issuer ?? DEFAULT_ISSUER;
    this.audience = audienceOf(o.service);
    this.cacheSize = o.cacheSize ?? 10_000;
  }

  /** The caller of an RPC, from its authorization and on-behalf-of metadata. */
  async authenticate(authorization: string | undefined, onBehalfOf?: string): Promise<Principal> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) throw unauthenticated('MISSING_TOKEN', 'a bearer token is required');
    const caller = await this.verify(m[1]!, this.audience);
    if (onBehalfOf === undefined) return caller;
    if (!caller.service) {
      throw unauthenticated('ON_BEHALF_OF_NOT_ALLOWED', 'only a corebank service may call on behalf of another');
    }
    const subject = await this.verify(onBehalfOf.trim(), audienceOf(caller.service), true);
    // The calling service's own scopes, bound to the customer of the token it was sent.
    const principal: Principal = {
      ...caller,
      onBehalfOf: subject.channel,
      ...(subject.customerId !== undefined ? { customerId: subject.customerId } : {}),
    };
    const bearer = customerTokenOf(subject);
    if (bearer) bearers.set(principal, bearer);
    return principal;
  }

  /** A token, verified for one audience (cached). */
  async verify(token: string, audience: string, forwarded = false): Promise<Principal> {
    const cacheKey = `${forwarded ? 'obo' : 'direct'} ${audience} ${token}`;
    const hit = this.cache.get(cacheKey);
    if (hit) {
      await this.o.keys.refresh();
      if (hit.expiresAt > Date.now() && this.o.keys.current(hit.kid)?.key === hit.key) return hit.principal;
      this.cache.delete(cacheKey);
    }
    const v = await this.check(token, audience, forwarded);
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(cacheKey, v);
    return v.principal;
  }

  private async check(token: string, audience: string, forwarded: boolean): Promise<Verified> {
    const what = forwarded ? 'the on-behalf-of token' : 'the bearer token';
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) {
      throw unauthenticated('MALFORMED_TOKEN', `${what} is not a compact JWS`);
    }
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthenticated('MALFORMED_TOKEN', `${what} has no readable header`);
    }
    if (!(ALGORITHMS as readonly string[]).includes(String(header.alg))) {
      throw unauthenticated('ALGORITHM_NOT_ALLOWED', `${what} must be signed with ${ALGORITHMS.join(' or ')}`);
    }
    if (typeof header.kid !== 'string' || !header.kid) {
      throw unauthenticated('MISSING_KEY_ID', `${what} names no key (kid)`);
    }
    const kid = header.kid;
    const entry = await this.o.keys.find(kid);
    if (!entry) throw unauthenticated('UNKNOWN_KEY', `${what} is signed with a key this service does not know`);
    if (entry.alg !== header.alg) {
      throw unauthenticated('ALGORITHM_NOT_ALLOWED', `${what} uses another algorithm than its key`);
    }
    let payloadBytes: Uint8Array;
    try {
      ({ payload: payloadBytes } = await compactVerify(token, entry.key, { algorithms: [entry.alg] }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWS_INVALID') throw unauthenticated('MALFORMED_TOKEN', `${what} is not a valid JWS`);
      throw unauthenticated('BAD_SIGNATURE', `${what} has a bad signature`);
    }
    let claims: Record<string, unknown>;
    try {
      claims = JSON.parse(new TextDecoder().decode(payloadBytes)) as Record<string, unknown>;
      if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new Error();
    } catch {
      throw unauthenticated('MALFORMED_TOKEN', `${what} has no JSON claims`);
    }
    const now = Date.now() / 1000;
    const { iss, sub, aud, exp, nbf, iat, scope, customer_id: customerId } = claims;
    if (iss !== this.issuer) throw unauthenticated('WRONG_ISSUER', `${what} comes from another issuer`);
    if (typeof exp !== 'number' || typeof iat !== 'number' || (nbf !== undefined && typeof nbf !== 'number')) {
      throw unauthenticated('MALFORMED_TOKEN', `${what} needs numeric exp and iat (and nbf when present)`);
    }
    if (exp <= now - CLOCK_TOLERANCE_S) throw unauthenticated('TOKEN_EXPIRED', `${what} has expired`);
    // iat is required but not held against this clock: a service whose clock runs behind the
    // issuer's must not refuse fresh tokens (nbf is the claim that says "not before").
    if ((nbf ?? 0) > now + CLOCK_TOLERANCE_S) throw unauthenticated('TOKEN_NOT_YET_VALID', `${what} is not valid yet`);
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(audience)) {
      throw unauthenticated('WRONG_AUDIENCE', `${what} is not meant for ${audience}`);
    }
    if (typeof sub !== 'string' || !sub || sub.length > 128) {
      throw unauthenticated('MALFORMED_TOKEN', `${what} needs a subject (the channel)`);
    }
    if (
      (scope !== undefined && typeof scope !== 'string') ||
      (customerId !== undefined && typeof customerId !== 'string')
    ) {
      throw unauthenticated('MALFORMED_TOKEN', `${what} has a scope or customer_id that is not text`);
    }
    const scopes = new Set((scope ?? '').split(' ').filter(Boolean));
    const service = serviceOfKid(kid);
    if (service !== undefined) {
      if (forwarded) {
        throw unauthenticated('ON_BEHALF_OF_NOT_ALLOWED', 'a service token cannot be forwarded on behalf of a channel');
      }
      if (sub !== service || customerId !== undefined) {
        throw unauthenticated('SERVICE_IDENTITY_MISMATCH', `a service key signs only its own service's tokens`);
      }
      const allowed = allowedScopes(service, this.o.service);
      const extra = [...scopes].filter((s) => !allowed.includes(s));
      if (extra.length > 0) {
        throw new DomainError(
          'PERMISSION_DENIED',
          'SERVICE_SCOPE_NOT_ALLOWED',
          `the service "${service}" may not hold ${extra.slice(0, 5).join(', ')} towards ${this.o.service}`,
        );
      }
    }
    const principal: Principal = {
      channel: sub,
      scopes,
      ...(customerId !== undefined ? { customerId } : {}),
      ...(service !== undefined ? { service } : {}),
    };
    if (customerId !== undefined) bearers.set(principal, token);
    return { principal, token, kid, key: entry.key, expiresAt: exp * 1000 };
  }
}

// ---------------------------------------------------------------------------------------------
// Authorisation

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
