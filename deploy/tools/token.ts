// The token issuer's command line (`npm run token -- ...`): mints channel tokens with the issuer's
// private key, and creates and retires signing keys in a JWKS.
//
//   npm run token -- --channel mobile --scopes payments:write,accounts:read [--customer ID]
//                    [--ttl 15m] [--audience payment,account] [--not-before 0s] [--key issuer.jwk.json]
//                    [--issuer corebank]
//   npm run token -- keygen --kid issuer-2026-12 --out DIR [--jwks DIR/jwks.json] [--alg ES256|EdDSA]
//   npm run token -- retire --kid issuer-2026-06 --jwks jwks.json
//
// The issuer key defaults to $TOKEN_ISSUER_KEY, else the one the local launcher (`npm run up`)
// made (named in .local/bank.json). Prints the token, and nothing else, on stdout.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ALL_AUDIENCES, audienceOf, DEFAULT_ISSUER, isServiceName, mintToken, type Algorithm } from '@corebank/kit';
import { keygen, loadIssuerKey, retireKey } from './keys.js';

/** The longest lifetime the CLI mints: tokens are short-lived, channels renew them. */
export const MAX_TTL_SECONDS = 24 * 3600;

/** `90`, `30s`, `15m`, `12h`, `1d` in seconds. */
export function parseDuration(raw: string, flag: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(raw.trim());
  if (!m) throw new Error(`${flag}: a duration such as 30s, 15m, 12h or 1d, got "${raw}"`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
}

/** Service names (`payment`) or audiences (`corebank.payment`), comma-separated. */
export function parseAudiences(raw: string | undefined): string[] {
  if (raw === undefined) return [...ALL_AUDIENCES];
  const out = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.startsWith('corebank.') ? s : audienceOf(s)));
  for (const a of out) {
    if (!isServiceName(a.slice('corebank.'.length))) {
      throw new Error(`--audience: ${a} is no corebank service (${ALL_AUDIENCES.join(', ')})`);
    }
  }
  if (out.length === 0) throw new Error('--audience: name at least one service');
  return out;
}

function defaultIssuerKey(): string {
  if (process.env.TOKEN_ISSUER_KEY) return process.env.TOKEN_ISSUER_KEY;
  const bank = join(process.env.LOCAL_DIR ?? '.local', 'bank.json');
  if (existsSync(bank)) {
    const k = (JSON.parse(readFileSync(bank, 'utf8')) as { issuerKey?: string }).issuerKey;
    if (k) return k;
  }
  throw new Error('--key: name the issuer private key (or set TOKEN_ISSUER_KEY, or run npm run up)');
}

export async function mintFromArgs(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      channel: { type: 'string' },
      scopes: { type: 'string' },
      customer: { type: 'string' },
      ttl: { type: 'string', default: '15m' },
      audience: { type: 'string' },
      'not-before': { type: 'string' },
      key: { type: 'string' },
      issuer: { type: 'string', default: DEFAULT_ISSUER },
    },
  });
  const channel = values.channel ?? '';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(channel)) throw new Error('--channel: a name of 1 to 64 letters, digits, . _ -');
  const scopes = (values.scopes ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = scopes.find((s) => !/^[a-z]+:[a-z]+$/.test(s));
  if (bad !== undefined) throw new Error(`--scopes: "${bad}" is not a scope such as payments:write`);
  if (scopes.length === 0) throw new Error('--scopes: name at least one scope, comma-separated');
  const ttl = parseDuration(values.ttl, '--ttl');
  if (ttl < 1 || ttl > MAX_TTL_SECONDS) throw new Error('--ttl: between 1s and 24h');
  if (values.customer !== undefined && !/^[A-Za-z0-9-]{1,128}$/.test(values.customer)) {
    throw new Error('--customer: a customer id');
  }
  const key = await loadIssuerKey(values.key ?? defaultIssuerKey());
  const now = Math.floor(Date.now() / 1000);
  return mintToken(key, {
    channel,
    scopes,
    audience: parseAudiences(values.audience),
    ttlSeconds: ttl,
    issuer: values.issuer,
    issuedAt: now,
    ...(values.customer ? { customerId: values.customer } : {}),
    ...(values['not-before'] ? { notBefore: now + parseDuration(values['not-before'], '--not-before') } : {}),
  });
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === 'keygen') {
    const { values } = parseArgs({
      args: rest,
      strict: true,
      options: { kid: { type: 'string' }, out: { type: 'string' }, jwks: { type: 'string' }, alg: { type: 'string' } },
    });
    if (!values.kid || !values.out) throw new Error('usage: npm run token -- keygen --kid KID --out DIR [--jwks FILE]');
    const alg = (values.alg ?? 'ES256') as Algorithm;
    if (alg !== 'ES256' && alg !== 'EdDSA') throw new Error('--alg: ES256 or EdDSA');
    const r = await keygen({
      kid: values.kid,
      outDir: values.out,
      jwksPath: values.jwks ?? join(values.out, 'jwks.json'),
      alg,
    });
    console.error(`private key: ${r.privatePath} (keep it secret)\nJWKS: ${r.jwksPath} (keys: ${r.kids.join(', ')})`);
    return;
  }
  if (first === 'retire') {
    const { values } = parseArgs({
      args: rest,
      strict: true,
      options: { kid: { type: 'string' }, jwks: { type: 'string' } },
    });
    if (!values.kid || !values.jwks) throw new Error('usage: npm run token -- retire --kid KID --jwks FILE');
    const left = retireKey(values.jwks, values.kid);
    console.error(`JWKS: ${values.jwks} (keys: ${left.join(', ')})`);
    return;
  }
  console.log(await mintFromArgs(argv));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`token: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  });
}
