// The token CLI as an operator uses it: make an issuer key, mint tokens with it, rotate (add a new
// key, sign with it, retire the old one) and watch a service's verifier follow the JWKS file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_AUDIENCES, DomainError, KeyStore, parseJwks, TokenVerifier } from '@corebank/kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateKeyFile } from './keys.js';
import { mintFromArgs } from './token.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

function token(...args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'deploy/tools/token.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TOKEN_ISSUER_KEY: '', LOCAL_DIR: '/nonexistent' },
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const header = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;

describe('npm run token', () => {
  let dir: string;
  let jwks: string;
  let verifier: TokenVerifier;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'token-cli-'));
    jwks = join(dir, 'jwks.json');
    const made = token('keygen', '--kid', 'issuer-1', '--out', dir);
    expect(made.status, made.stderr).toBe(0);
    verifier = new TokenVerifier({
      keys: await KeyStore.create({ keys: parseJwks(readFileSync(jwks, 'utf8')), path: jwks }, { reloadMs: 0 }),
      service: 'payment',
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('makes an issuer key pair: a private JWK only its owner reads, the public key in the JWKS', () => {
    const key = privateKeyFile(dir, 'issuer-1');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(key, 'utf8'))).toMatchObject({ kid: 'issuer-1', kty: 'EC', crv: 'P-256' });
    const doc = JSON.parse(readFileSync(jwks, 'utf8')) as { keys: Record<string, unknown>[] };
    expect(doc.keys.map((k) => k.kid)).toEqual(['issuer-1']);
    expect(doc.keys[0]).not.toHaveProperty('d');
    // A kid names one key for good.
    const again = token('keygen', '--kid', 'issuer-1', '--out', dir);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/issuer-1 is already in/);
  });

  it('mints a short-lived channel token with the claims asked for', async () => {
    const key = privateKeyFile(dir, 'issuer-1');
    const r = token(
      '--key',
      key,
      '--channel',
      'mobile',
      '--scopes',
      'payments:write,accounts:read',
      '--customer',
      'c-42',
      '--ttl',
      '10m',
    );
    expect(r.status, r.stderr).toBe(0);
    expect(header(r.stdout)).toMatchObject({ alg: 'ES256', kid: 'issuer-1', typ: 'JWT' });
    const c = claims(r.stdout);
    expect(c).toMatchObject({
      sub: 'mobile',
      iss: 'corebank',
      scope: 'payments:write accounts:read',
      customer_id: 'c-42',
      aud: [...ALL_AUDIENCES],
    });
    expect((c.exp as number) - (c.iat as number)).toBe(600);
    const p = await verifier.authenticate(`Bearer ${r.stdout}`);
    expect(p).toMatchObject({ channel: 'mobile', customerId: 'c-42' });
    // One audience, a default lifetime of 15 minutes.
    const one = token('--key', key, '--channel', 'teller', '--scopes', 'payments:read', '--audience', 'account');
    expect(claims(one.stdout)).toMatchObject({ aud: 'corebank.account' });
    expect((claims(one.stdout).exp as number) - (claims(one.stdout).iat as number)).toBe(900);
  });

  it('refuses what it should not mint, naming the flag', async () => {
    const key = privateKeyFile(dir, 'issuer-1');
    const cases: [string[], RegExp][] = [
      [['--key', key, '--scopes', 'payments:write'], /--channel/],
      [['--key', key, '--channel', 'mobile'], /--scopes/],
      [['--key', key, '--channel', 'mobile', '--scopes', 'payments:write', '--ttl', '2d'], /--ttl: between 1s and 24h/],
      [['--key', key, '--channel', 'mobile', '--scopes', 'payments:write', '--audience', 'mainframe'], /--audience/],
      [['--channel', 'mobile', '--scopes', 'payments:write'], /--key: name the issuer private key/],
      [['--key', jwks, '--channel', 'mobile', '--scopes', 'payments:write'], /--key: .* must be a private JWK/],
    ];
    const saved = { key: process.env.TOKEN_ISSUER_KEY, dir: process.env.LOCAL_DIR };
    process.env.TOKEN_ISSUER_KEY = '';
    process.env.LOCAL_DIR = '/nonexistent';
    try {
      for (const [args, want] of cases) await expect(mintFromArgs(args), args.join(' ')).rejects.toThrow(want);
    } finally {
      process.env.TOKEN_ISSUER_KEY = saved.key;
      process.env.LOCAL_DIR = saved.dir;
      if (saved.key === undefined) delete process.env.TOKEN_ISSUER_KEY;
      if (saved.dir === undefined) delete process.env.LOCAL_DIR;
    }
    // On the command line: one line on stderr, exit 2, nothing on stdout.
    const r = token('--key', key, '--channel', 'mobile', '--scopes', 'payments:write', '--ttl', '2d');
    expect([r.status, r.stdout, r.stderr]).toEqual([2, '', 'token: --ttl: between 1s and 24h']);
    // A service's key signs only its own tokens, never a channel's.
    expect(token('keygen', '--kid', 'service:payment', '--out', dir).status).toBe(0);
    await expect(
      mintFromArgs([
        '--key',
        privateKeyFile(dir, 'service:payment'),
        '--channel',
        'mobile',
        '--scopes',
        'payments:read',
      ]),
    ).rejects.toThrow(/is a service key/);
  });

  it('rotates: add a new key, sign with it, retire the old one; the verifier follows the file', async () => {
    const old = token('--key', privateKeyFile(dir, 'issuer-1'), '--channel', 'mobile', '--scopes', 'payments:read');
    expect(token('keygen', '--kid', 'issuer-2', '--alg', 'EdDSA', '--out', dir).status).toBe(0);
    const fresh = token('--key', privateKeyFile(dir, 'issuer-2'), '--channel', 'mobile', '--scopes', 'payments:read');
    expect(header(fresh.stdout)).toMatchObject({ alg: 'EdDSA', kid: 'issuer-2' });
    // During the rotation both keys verify.
    expect((await verifier.authenticate(`Bearer ${fresh.stdout}`)).channel).toBe('mobile');
    expect((await verifier.authenticate(`Bearer ${old.stdout}`)).channel).toBe('mobile');
    const retired = token('retire', '--kid', 'issuer-1', '--jwks', jwks);
    expect(retired.status, retired.stderr).toBe(0);
    const e = await verifier.authenticate(`Bearer ${old.stdout}`).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(DomainError);
    expect((e as DomainError).reason).toBe('UNKNOWN_KEY');
    expect((await verifier.authenticate(`Bearer ${fresh.stdout}`)).channel).toBe('mobile');
    // What is left: the new issuer key and the service key made above.
    const doc = JSON.parse(readFileSync(jwks, 'utf8')) as { keys: { kid: string }[] };
    expect(doc.keys.map((k) => k.kid)).toEqual(['service:payment', 'issuer-2']);
  });
});
