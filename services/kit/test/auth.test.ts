// The token verifier on its own: every way a token can fail has its own reason; keys come from a
// JWKS file that is re-read when it changes (two keys during a rotation, a dropped key stops its
// tokens, cached ones included); service keys sign only their own service's narrow tokens; a
// forwarded customer token binds a service's call to that customer.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ALL_AUDIENCES,
  audienceOf,
  baseSpec,
  ConfigError,
  DomainError,
  generateSigningKey,
  KeyStore,
  loadConfig,
  mintToken,
  parseJwks,
  serviceIdentity,
  serviceKeySpec,
  serviceKid,
  signingKey,
  TokenVerifier,
  type MintOptions,
  type SigningKey,
} from '@corebank/kit';
import { CompactSign, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const now = () => Math.floor(Date.now() / 1000);

async function rejection(p: Promise<unknown>): Promise<DomainError> {
  const e = await p.then(
    () => {
      throw new Error('expected the token to be refused');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DomainError);
  return e as DomainError;
}

describe('TokenVerifier', () => {
  let dir: string;
  let jwksPath: string;
  let issuer: SigningKey;
  let other: SigningKey; // a key the JWKS does not hold
  let payment: SigningKey;
  let keys: KeyStore;
  let account: TokenVerifier;
  const publicKeys: Record<string, unknown>[] = [];

  const writeJwks = (entries: Record<string, unknown>[]) => {
    writeFileSync(jwksPath, JSON.stringify({ keys: entries }));
    // A new modification time even within the file system's time resolution.
    const t = new Date(Date.now() + Math.floor(Math.random() * 1e6));
    utimesSync(jwksPath, t, t);
  };
  const channelToken = (o: Partial<MintOptions> = {}, key = issuer) =>
    mintToken(key, { channel: 'mobile', scopes: ['accounts:read'], audience: ALL_AUDIENCES, ...o });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'auth-test-'));
    jwksPath = join(dir, 'jwks.json');
    const i = await generateSigningKey('issuer-1');
    const p = await generateSigningKey(serviceKid('payment'), 'EdDSA');
    const o = await generateSigningKey('issuer-1');
    issuer = await signingKey(i.privateJwk);
    payment = await signingKey(p.privateJwk);
    other = await signingKey(o.privateJwk);
    publicKeys.push(i.publicJwk, p.publicJwk);
    writeJwks(publicKeys);
    // Checked at most every 100 ms here (5 s in the services).
    keys = await KeyStore.create(
      { keys: parseJwks(JSON.stringify({ keys: publicKeys })), path: jwksPath },
      { reloadMs: 100 },
    );
    account = new TokenVerifier({ keys, service: 'account' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a valid channel token and reads its claims', async () => {
    const p = await account.authenticate(`Bearer ${await channelToken({ customerId: 'c-1', scopes: ['a:b', 'c:d'] })}`);
    expect(p).toMatchObject({ channel: 'mobile', customerId: 'c-1' });
    expect([...p.scopes]).toEqual(['a:b', 'c:d']);
    expect(p.service).toBeUndefined();
  });

  it('refuses each bad token with its own reason', async () => {
    const reason = async (authorization: string | undefined) =>
      (await rejection(account.authenticate(authorization))).reason;
    const t = now();
    const hs256 = await new SignJWT({ scope: 'ledger:admin' })
      .setProtectedHeader({ alg: 'HS256', kid: 'issuer-1' })
      .setSubject('mobile')
      .setIssuer('corebank')
      .setAudience(audienceOf('account'))
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new Uint8Array(32));
    const claims = { sub: 'mobile', iss: 'corebank', aud: audienceOf('account'), iat: t, exp: t + 300 };
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const algNone = `${b64({ alg: 'none', kid: 'issuer-1' })}.${b64(claims)}.`;
    const noKid = await new CompactSign(Buffer.from(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'ES256' })
      .sign(issuer.key);
    const valid = await channelToken();
    const [h, body] = valid.split('.');
    const tampered = `${h}.${b64({ ...claims, scope: 'ledger:admin' })}.${valid.split('.')[2]}`;
    const forged = await channelToken({}, other); // same kid, another key
    const cases: [string, string | undefined, string][] = [
      ['no header', undefined, 'MISSING_TOKEN'],
      ['not bearer', `Basic ${valid}`, 'MISSING_TOKEN'],
      ['garbage', 'Bearer not.a.jwt', 'MALFORMED_TOKEN'],
      ['two parts', `Bearer ${h}.${body}`, 'MALFORMED_TOKEN'],
      ['alg none', `Bearer ${algNone}`, 'ALGORITHM_NOT_ALLOWED'],
      ['HS256', `Bearer ${hs256}`, 'ALGORITHM_NOT_ALLOWED'],
      ['no kid', `Bearer ${noKid}`, 'MISSING_KEY_ID'],
      ['unknown kid', `Bearer ${await channelToken({}, { ...other, kid: 'issuer-9' })}`, 'UNKNOWN_KEY'],
      ['tampered claims', `Bearer ${tampered}`, 'BAD_SIGNATURE'],
      ['another key, same kid', `Bearer ${forged}`, 'BAD_SIGNATURE'],
      ['wrong issuer', `Bearer ${await channelToken({ issuer: 'evil' })}`, 'WRONG_ISSUER'],
      ['expired', `Bearer ${await channelToken({ issuedAt: t - 3600, ttlSeconds: 600 })}`, 'TOKEN_EXPIRED'],
      ['not yet valid (nbf)', `Bearer ${await channelToken({ notBefore: t + 600 })}`, 'TOKEN_NOT_YET_VALID'],
      ['wrong audience', `Bearer ${await channelToken({ audience: audienceOf('payment') })}`, 'WRONG_AUDIENCE'],
    ];
    for (const [what, authorization, want] of cases) {
      expect(await reason(authorization), what).toBe(want);
    }
    const e = await rejection(
      account.authenticate(`Bearer ${await channelToken({ issuedAt: t - 3600, ttlSeconds: 600 })}`),
    );
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(e.message).not.toContain('mobile');
  });

  it('accepts a token from an issuer whose clock runs ahead (iat ahead, no nbf)', async () => {
    const token = await channelToken({ issuedAt: now() + 300 });
    expect((await account.authenticate(`Bearer ${token}`)).channel).toBe('mobile');
  });

  it('accepts a token listing several audiences, one of them its own', async () => {
    const token = await channelToken({ audience: [audienceOf('payment'), audienceOf('account')] });
    expect((await account.authenticate(`Bearer ${token}`)).channel).toBe('mobile');
  });

  it('lets a service key sign only that service, within its declared scopes towards the callee', async () => {
    const own = (o: Partial<MintOptions>) =>
      mintToken(payment, { channel: 'payment', audience: audienceOf('account'), scopes: ['accounts:read'], ...o });
    const p = await account.authenticate(`Bearer ${await own({ scopes: ['accounts:read', 'transfers:write'] })}`);
    expect(p).toMatchObject({ channel: 'payment', service: 'payment' });
    const admin = await rejection(account.authenticate(`Bearer ${await own({ scopes: ['ledger:admin'] })}`));
    expect([admin.code, admin.reason]).toEqual(['PERMISSION_DENIED', 'SERVICE_SCOPE_NOT_ALLOWED']);
    const asCustomer = await rejection(account.authenticate(`Bearer ${await own({ channel: 'customer' })}`));
    expect(asCustomer.reason).toBe('SERVICE_IDENTITY_MISMATCH');
    const bound = await rejection(account.authenticate(`Bearer ${await own({ customerId: 'c-1' })}`));
    expect(bound.reason).toBe('SERVICE_IDENTITY_MISMATCH');
    // Towards a service it is not declared to call, nothing at all.
    const product = new TokenVerifier({ keys, service: 'loan' });
    const none = await rejection(
      product.authenticate(`Bearer ${await own({ audience: audienceOf('loan'), scopes: ['products:read'] })}`),
    );
    expect(none.reason).toBe('SERVICE_SCOPE_NOT_ALLOWED');
  });

  it('binds a service call to the customer of the forwarded token, and only a service may forward', async () => {
    const service = await mintToken(payment, {
      channel: 'payment',
      audience: audienceOf('account'),
      scopes: ['accounts:read'],
    });
    // The customer's token was for the payment service, which forwards it.
    const customer = await channelToken({ customerId: 'c-7', audience: audienceOf('payment') });
    const p = await account.authenticate(`Bearer ${service}`, customer);
    expect(p).toMatchObject({ channel: 'payment', service: 'payment', customerId: 'c-7', onBehalfOf: 'mobile' });
    expect([...p.scopes]).toEqual(['accounts:read']);
    // A channel may not forward (it could only bind itself tighter, but nobody needs that).
    const channel = await channelToken();
    expect((await rejection(account.authenticate(`Bearer ${channel}`, customer))).reason).toBe(
      'ON_BEHALF_OF_NOT_ALLOWED',
    );
    // A forwarded token is checked like any other: not for the forwarding service, expired, a service's own.
    const notForPayment = await channelToken({ customerId: 'c-7', audience: audienceOf('customer') });
    expect((await rejection(account.authenticate(`Bearer ${service}`, notForPayment))).reason).toBe('WRONG_AUDIENCE');
    const expired = await channelToken({ customerId: 'c-7', issuedAt: now() - 3600, ttlSeconds: 60 });
    expect((await rejection(account.authenticate(`Bearer ${service}`, expired))).reason).toBe('TOKEN_EXPIRED');
    const serviceAsSubject = await mintToken(payment, {
      channel: 'payment',
      audience: audienceOf('payment'),
      scopes: [],
    });
    expect((await rejection(account.authenticate(`Bearer ${service}`, serviceAsSubject))).reason).toBe(
      'ON_BEHALF_OF_NOT_ALLOWED',
    );
  });

  it('rotates: a new key is picked up from the file, both verify, a dropped key stops its tokens (cached too)', async () => {
    const oldToken = await channelToken();
    expect((await account.authenticate(`Bearer ${oldToken}`)).channel).toBe('mobile'); // now cached
    const next = await generateSigningKey('issuer-2', 'EdDSA');
    const nextKey = await signingKey(next.privateJwk);
    const newToken = await channelToken({}, nextKey);
    // An unknown kid makes the verifier look at the file at once.
    expect((await rejection(account.authenticate(`Bearer ${newToken}`))).reason).toBe('UNKNOWN_KEY');
    writeJwks([...publicKeys, next.publicJwk]);
    await new Promise((r) => setTimeout(r, 1_100)); // the forced look is rate-limited to once a second
    expect((await account.authenticate(`Bearer ${newToken}`)).channel).toBe('mobile');
    expect((await account.authenticate(`Bearer ${oldToken}`)).channel).toBe('mobile');
    // The old issuer key is retired: its (cached) token is refused after the next look at the file.
    writeJwks([publicKeys[1]!, next.publicJwk]);
    await new Promise((r) => setTimeout(r, 150));
    expect((await rejection(account.authenticate(`Bearer ${oldToken}`))).reason).toBe('UNKNOWN_KEY');
    expect((await account.authenticate(`Bearer ${newToken}`)).channel).toBe('mobile');
  });

  it('keeps the previous keys when the file is broken, and says so', async () => {
    const errors: unknown[] = [];
    const path = join(dir, 'broken.json');
    writeFileSync(path, JSON.stringify({ keys: publicKeys }));
    const store = await KeyStore.create(
      { keys: parseJwks(JSON.stringify({ keys: publicKeys })), path },
      { reloadMs: 10, onError: (e) => errors.push(e) },
    );
    const v = new TokenVerifier({ keys: store, service: 'account' });
    writeFileSync(path, '{"keys": [');
    await new Promise((r) => setTimeout(r, 20));
    expect((await v.authenticate(`Bearer ${await channelToken()}`)).channel).toBe('mobile');
    expect(errors.length).toBeGreaterThan(0);
  });

  it('refuses a JWKS with private keys, keys without kid, or other algorithms', async () => {
    const k = await generateSigningKey('k1');
    expect(() => parseJwks(JSON.stringify({ keys: [k.privateJwk] }))).toThrow(/private key material/);
    expect(() => parseJwks(JSON.stringify({ keys: [{ ...k.publicJwk, kid: '' }] }))).toThrow(/kid/);
    expect(() => parseJwks(JSON.stringify({ keys: [k.publicJwk, k.publicJwk] }))).toThrow(/twice/);
    expect(() => parseJwks(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h' }] }))).toThrow(/ES256/);
    expect(() => parseJwks(JSON.stringify({ keys: [{ ...k.publicJwk, kid: 'service:Pay Ment' }] }))).toThrow(
      /service:<name>/,
    );
    expect(() => parseJwks('[]')).toThrow(/JWKS/);
  });
});

describe('auth configuration', () => {
  const spec = { authJwks: baseSpec.authJwks, authIssuer: baseSpec.authIssuer, ...serviceKeySpec };
  const load = (env: Record<string, string>) => loadConfig(spec, env);
  const message = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('names the bad variable and says what is wrong, never echoing a key', async () => {
    const k = await generateSigningKey(serviceKid('payment'));
    const jwks = JSON.stringify({ keys: [k.publicJwk] });
    const key = JSON.stringify(k.privateJwk);
    expect(message(() => load({ AUTH_SERVICE_KEY: key }))).toMatch(/^invalid configuration: AUTH_JWKS: is required/);
    expect(message(() => load({ AUTH_JWKS: '/no/such/file', AUTH_SERVICE_KEY: key }))).toBe(
      'invalid configuration: AUTH_JWKS: cannot read the file /no/such/file: ENOENT',
    );
    expect(message(() => load({ AUTH_JWKS: JSON.stringify({ keys: [k.privateJwk] }), AUTH_SERVICE_KEY: key }))).toMatch(
      /AUTH_JWKS: key "service:payment" holds private key material/,
    );
    expect(message(() => load({ AUTH_JWKS: '{"keys": []}', AUTH_SERVICE_KEY: key }))).toMatch(
      /AUTH_JWKS: holds no keys/,
    );
    const noPrivate = message(() => load({ AUTH_JWKS: jwks, AUTH_SERVICE_KEY: JSON.stringify(k.publicJwk) }));
    expect(noPrivate).toBe('invalid configuration: AUTH_SERVICE_KEY: must be a private JWK (with d)');
    const c = load({ AUTH_JWKS: jwks, AUTH_SERVICE_KEY: key });
    expect((await serviceIdentity('payment', c)).key.kid).toBe('service:payment');
    // Another service's key is refused at start-up.
    await expect(serviceIdentity('customer', c)).rejects.toThrow(
      'invalid configuration: AUTH_SERVICE_KEY: the key id must be service:customer[:<version>], got "service:payment"',
    );
  });
});
