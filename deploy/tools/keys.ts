// Issuer and service keys on disk, for the token CLI (deploy/tools/token.ts) and the local
// launcher: a key pair per kid (the private JWK in its own file, mode 0600), and the JWKS the
// services verify with (public keys only), written atomically so a service that re-reads it never
// sees half a file.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  generateSigningKey,
  parseJwks,
  parseSigningJwk,
  serviceOfKid,
  signingKey,
  type Algorithm,
  type SigningKey,
} from '@corebank/kit';

type Jwk = Record<string, unknown> & { kid: string };

/** The keys of a JWKS file (none when it does not exist yet); refuses a file that is not a JWKS. */
export function readJwks(path: string): Jwk[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  parseJwks(text);
  return (JSON.parse(text) as { keys: Jwk[] }).keys;
}

export function writeJwks(path: string, keys: Jwk[]): void {
  parseJwks(JSON.stringify({ keys }));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ keys }, null, 2)}\n`);
  renameSync(tmp, path);
}

export const privateKeyFile = (dir: string, kid: string) =>
  join(dir, `${kid.replace(/[^A-Za-z0-9._-]/g, '_')}.jwk.json`);

/**
 * Makes a key pair: the private JWK goes to `<outDir>/<kid>.jwk.json` (':' written as '_'), the
 * public key is added to the JWKS at `jwksPath` (created when missing). A kid already in the JWKS
 * or an existing private key file is refused: a kid names one key for good.
 */
export async function keygen(o: {
  kid: string;
  outDir: string;
  jwksPath: string;
  alg?: Algorithm;
}): Promise<{ privatePath: string; jwksPath: string; kids: string[] }> {
  if (!/^[A-Za-z0-9._:-]{1,100}$/.test(o.kid)) throw new Error('--kid: letters, digits and . _ : - only');
  const keys = readJwks(o.jwksPath);
  if (keys.some((k) => k.kid === o.kid)) throw new Error(`--kid: ${o.kid} is already in ${o.jwksPath}`);
  const privatePath = privateKeyFile(o.outDir, o.kid);
  if (existsSync(privatePath)) throw new Error(`${privatePath} exists: a kid names one key for good`);
  const { privateJwk, publicJwk } = await generateSigningKey(o.kid, o.alg ?? 'ES256');
  mkdirSync(o.outDir, { recursive: true, mode: 0o700 });
  writeFileSync(privatePath, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600, flag: 'wx' });
  const next = [...keys, publicJwk as Jwk];
  writeJwks(o.jwksPath, next);
  return { privatePath, jwksPath: o.jwksPath, kids: next.map((k) => k.kid) };
}

/** Drops a key from the JWKS: tokens it signed stop being accepted (within the services' reload interval). */
export function retireKey(jwksPath: string, kid: string): string[] {
  const keys = readJwks(jwksPath);
  if (!keys.some((k) => k.kid === kid)) throw new Error(`--kid: ${kid} is not in ${jwksPath}`);
  const next = keys.filter((k) => k.kid !== kid);
  if (next.length === 0) throw new Error(`--kid: ${kid} is the last key of ${jwksPath}; add its successor first`);
  writeJwks(jwksPath, next);
  return next.map((k) => k.kid);
}

/** The issuer's signing key from its private JWK file (a service key cannot sign channel tokens). */
export async function loadIssuerKey(path: string): Promise<SigningKey> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`--key: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let jwk;
  try {
    jwk = parseSigningJwk(text);
  } catch (err) {
    throw new Error(`--key: ${path} ${(err as Error).message}`);
  }
  if (serviceOfKid(jwk.kid) !== undefined) throw new Error(`--key: ${jwk.kid} is a service key, not an issuer key`);
  return signingKey(jwk);
}
