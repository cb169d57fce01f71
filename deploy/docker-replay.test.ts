// The container image, checked without a container engine: this test reads deploy/Dockerfile and
// replays its steps in a temporary directory (one folder per stage standing for the stage's
// filesystem): COPY from the build context filtered by .dockerignore, COPY --from between stages,
// RUN through `sh -c` in WORKDIR with the stage's ENV, then starts ENTRYPOINT + CMD the way the
// container would. Only the instructions the Dockerfile uses are understood; anything else fails
// the test, so the Dockerfile and this replay cannot drift apart silently.
//
// npm uses the local cache (npm_config_prefer_offline), standing in for the RUN --mount cache.
// What the replay cannot show: the base image's own contents and USER (asserted, not enforced).
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { AccountServiceClient } from '@corebank/kit/gen/corebank/v1/account';
import { createDatabases, freePort, promisify, testAuth, testToken } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const dockerfilePath = join(repoRoot, 'deploy/Dockerfile');

// ---------------------------------------------------------------------------------------------
// Dockerfile parsing

interface Instruction {
  op: string;
  flags: Record<string, string>;
  args: string;
  line: number;
}

export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, ' ');
      i++;
      if (!/^\s*#/.test(lines[i]!)) line += lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start + 1}: cannot parse "${line}"`);
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest); f; f = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)) {
      flags[f[1]!] = f[2] ?? 'true';
      rest = rest.slice(f[0].length);
    }
    out.push({ op: m[1]!.toUpperCase(), flags, args: rest, line: start + 1 });
  }
  return out;
}

interface Stage {
  name: string;
  from: string;
  steps: Instruction[];
}

/** Splits the Dockerfile into stages; `args` are the global ARGs, with `buildArgs` (--build-arg) applied. */
export function stagesOf(
  instructions: Instruction[],
  buildArgs: Record<string, string> = {},
): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile:${ins.line}: cannot parse FROM ${ins.args}`);
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? '');
      stages.push({ name: m[2] ?? String(stages.length), from, steps: [] });
    } else if (!stages.length) {
      if (ins.op !== 'ARG') throw new Error(`Dockerfile:${ins.line}: ${ins.op} before FROM`);
      const [k, v] = ins.args.split('=');
      args[k!] = buildArgs[k!] ?? v ?? '';
    } else {
      stages.at(-1)!.steps.push(ins);
    }
  }
  return { args, stages };
}

// ---------------------------------------------------------------------------------------------
// .dockerignore (the moby patternmatcher rules: last match wins, `!` re-includes, `**` spans
// directories, a pattern matching a directory excludes everything below it)

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      return { negate, re: globToRegExp(p) };
    });
  return (path: string) => {
    const parts = path.split('/');
    let excluded = false;
    for (const r of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (r.re.test(parts.slice(0, n).join('/'))) {
          excluded = !r.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

/** Files of the build context (relative paths), as `docker build .` would send them. */
export function contextFiles(root: string): string[] {
  const ignorePath = join(root, '.dockerignore');
  const ignored = existsSync(ignorePath) ? dockerignore(readFileSync(ignorePath, 'utf8')) : () => false;
  const hasExceptions = existsSync(ignorePath) && /^\s*!/m.test(readFileSync(ignorePath, 'utf8'));
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (ignored(p) && !hasExceptions) continue;
        walk(p);
      } else if (!ignored(p)) out.push(p);
    }
  };
  walk('');
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// Replay

interface Replayed {
  dir: string;
  /** Filesystem root of each stage. */
  roots: Record<string, string>;
  final: {
    root: string;
    workdir: string;
    env: Record<string, string>;
    entrypoint: string[];
    cmd: string[];
    user: string;
  };
  log: string[];
}

const jsonArray = (args: string, where: string): string[] => {
  try {
    const v = JSON.parse(args);
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v;
  } catch {
    /* fall through */
  }
  throw new Error(`${where}: use the JSON (exec) form`);
};

/** Runs a shell command without blocking the event loop (vitest's worker must keep answering). */
function sh(cmd: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

async function replay(dockerfile: string, context: string, buildArgs: Record<string, string> = {}): Promise<Replayed> {
  const dir = mkdtempSync(join(tmpdir(), 'corebank-image-'));
  try {
    return await replayInto(dir, dockerfile, context, buildArgs);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function replayInto(
  dir: string,
  dockerfile: string,
  context: string,
  buildArgs: Record<string, string>,
): Promise<Replayed> {
  const files = contextFiles(context);
  const { args: globalArgs, stages } = stagesOf(parseDockerfile(dockerfile), buildArgs);
  const roots: Record<string, string> = {};
  const log: string[] = [];
  let final: Replayed['final'] | undefined;

  for (const stage of stages) {
    const root = join(dir, stage.name);
    mkdirSync(root, { recursive: true });
    roots[stage.name] = root;
    let workdir = '/';
    const env: Record<string, string> = {};
    const runArgs: Record<string, string> = {};
    let entrypoint: string[] = [];
    let cmd: string[] = [];
    let user = 'root';
    const inStage = (p: string) => join(root, posix.resolve(workdir, p));

    for (const ins of stage.steps) {
      const where = `Dockerfile:${ins.line} ${ins.op}`;
      switch (ins.op) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, ins.args);
          mkdirSync(join(root, workdir), { recursive: true });
          break;
        case 'ENV':
          for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
          break;
        case 'USER':
          user = ins.args;
          break;
        case 'ARG': {
          // Inside a stage: the global ARG's value (or this default), visible to RUN as a variable.
          const [k, v] = ins.args.split('=');
          runArgs[k!] = buildArgs[k!] ?? globalArgs[k!] ?? v ?? '';
          break;
        }
        case 'EXPOSE':
        case 'LABEL':
          break;
        case 'ENTRYPOINT':
          entrypoint = jsonArray(ins.args, where);
          break;
        case 'CMD':
          cmd = jsonArray(ins.args, where);
          break;
        case 'COPY': {
          const unknown = Object.keys(ins.flags).filter((f) => !['from', 'chmod', 'link'].includes(f));
          if (unknown.length) throw new Error(`${where}: flags ${unknown.join(', ')} are not replayed`);
          const parts = ins.args.split(/\s+/);
          const dest = parts.pop()!;
          if (parts.some((p) => /[*?[]/.test(p))) throw new Error(`${where}: wildcards are not replayed`);
          const destPath = inStage(dest);
          const intoDir = dest.endsWith('/') || parts.length > 1;
          for (const src of parts) {
            let copied: string[];
            if (ins.flags.from) {
              const fromRoot = roots[ins.flags.from];
              if (!fromRoot) throw new Error(`${where}: no stage ${ins.flags.from}`);
              const abs = join(fromRoot, posix.resolve('/', src));
              if (!existsSync(abs)) throw new Error(`${where}: ${src} does not exist in stage ${ins.flags.from}`);
              if (statSync(abs).isDirectory()) {
                mkdirSync(destPath, { recursive: true });
                cpSync(abs, destPath, { recursive: true, verbatimSymlinks: true });
                copied = [destPath];
              } else {
                const target = intoDir ? join(destPath, posix.basename(src)) : destPath;
                mkdirSync(dirname(target), { recursive: true });
                cpSync(abs, target);
                copied = [target];
              }
            } else {
              const s = posix.normalize(src).replace(/\/+$/, '');
              const matches = files.filter((f) => f === s || f.startsWith(`${s}/`));
              if (!matches.length) throw new Error(`${where}: ${src} is not in the build context (.dockerignore?)`);
              const isDir = !matches.includes(s);
              copied = matches.map((f) => {
                const target = isDir
                  ? join(destPath, relative(s, f))
                  : intoDir
                    ? join(destPath, posix.basename(f))
                    : destPath;
                mkdirSync(dirname(target), { recursive: true });
                cpSync(join(context, f), target);
                return target;
              });
            }
            if (ins.flags.chmod) for (const c of copied) chmodSync(c, parseInt(ins.flags.chmod, 8));
          }
          break;
        }
        case 'RUN': {
          const unknown = Object.keys(ins.flags).filter((f) => f !== 'mount');
          if (unknown.length) throw new Error(`${where}: flags ${unknown.join(', ')} are not replayed`);
          if (ins.flags.mount && !/^type=cache,/.test(ins.flags.mount))
            throw new Error(`${where}: only cache mounts are replayed`);
          const started = Date.now();
          const r = await sh(ins.args, join(root, workdir), {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            // The RUN --mount=type=cache of npm's cache, here the developer's own npm cache.
            npm_config_prefer_offline: 'true',
            npm_config_update_notifier: 'false',
            ...runArgs,
            ...env,
          });
          log.push(
            `[${stage.name}] RUN ${ins.args} (${((Date.now() - started) / 1000).toFixed(1)}s, exit ${r.status})`,
          );
          if (r.status !== 0) throw new Error(`${where} ${ins.args} failed (exit ${r.status}):\n${r.output}`);
          break;
        }
        default:
          throw new Error(`${where}: instruction not replayed; teach deploy/docker-replay.test.ts about it`);
      }
    }
    final = { root, workdir, env, entrypoint, cmd, user };
  }
  return { dir, roots, final: final!, log };
}

// ---------------------------------------------------------------------------------------------

describe('deploy/Dockerfile, replayed without a container engine', () => {
  let image: Replayed;
  const app = () => join(image.final.root, image.final.workdir);

  /** Starts the image's ENTRYPOINT + CMD (or the given args) with only the given environment. */
  const start = (env: Record<string, string>, args?: string[]) => {
    const [entry, ...entryArgs] = image.final.entrypoint;
    const exe = entry!.startsWith('/') ? join(image.final.root, entry!) : join(app(), entry!);
    const r = spawnSync(exe, [...entryArgs, ...(args ?? image.final.cmd)], {
      cwd: app(),
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: image.dir, ...image.final.env, ...env },
    });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
  };

  beforeAll(async () => {
    // The lock was made against this workplace's partial registry mirror, which lacks some
    // platforms' optional binaries, so strict `npm ci` refuses it here: allow the Dockerfile's
    // documented fallback (`docker build --build-arg NPM_LOCK_FALLBACK=1`).
    image = await replay(readFileSync(dockerfilePath, 'utf8'), repoRoot, { NPM_LOCK_FALLBACK: '1' });
    console.log(image.log.join('\n'));
  }, 540_000);

  afterAll(() => {
    if (image) rmSync(image.dir, { recursive: true, force: true });
  });

  it('sends a build context without dependencies, build output, secrets or VCS data', () => {
    const files = contextFiles(repoRoot);
    expect(files).toContain('package-lock.json');
    expect(files).toContain('deploy/docker-entrypoint.sh');
    expect(files).toContain('services/kit/src/gen/descriptor.ts');
    const bad = files.filter((f) => /(^|\/)(node_modules|dist|\.git|\.local)\//.test(f) || /(^|\/)\.env(\.|$)/.test(f));
    expect(bad).toEqual([]);
  });

  it('runs as a numeric non-root user', () => {
    expect(image.final.user).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  it('holds the compiled services with production dependencies only', () => {
    const nm = join(app(), 'node_modules');
    for (const dep of ['@grpc/grpc-js', 'pg', 'knex', 'pino', '@nats-io/jetstream', 'prom-client']) {
      expect(existsSync(join(nm, dep, 'package.json')), dep).toBe(true);
    }
    for (const dev of ['typescript', 'vitest', 'eslint', 'prettier', 'ts-proto', '@bufbuild/buf', 'tsx', 'yaml']) {
      // yaml may stay only as a production dependency of another package, never at the top level as a dev tool.
      if (dev === 'yaml' && existsSync(join(nm, dev))) continue;
      expect(existsSync(join(nm, dev)), `${dev} is a devDependency`).toBe(false);
    }
    for (const service of ['account', 'customer', 'product', 'payment', 'loan']) {
      expect(existsSync(join(app(), `services/${service}/dist/command.js`)), service).toBe(true);
    }
    expect(existsSync(join(app(), 'services/kit/dist/index.js'))).toBe(true);
    // No sources, tests or tooling in the final image.
    for (const p of [
      'services/account/src',
      'services/customer/src',
      'services/kit/src',
      'proto',
      'charts',
      'tsconfig.json',
    ]) {
      expect(existsSync(join(app(), p)), p).toBe(false);
    }
    expect(statSync(join(app(), 'deploy/docker-entrypoint.sh')).mode & 0o111).toBeTruthy();
  });

  it('starts the account service and fails on missing configuration, naming the variable', () => {
    const r = start({ SERVICE: 'account' });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/AUTH_JWKS/);
    expect(r.out).toMatch(/invalid configuration: AUTH_JWKS: is required/);
  });

  it('fails on a bad value, naming the variable', async () => {
    const r = start({ SERVICE: 'account', AUTH_JWKS: '/no/such/jwks.json' });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/AUTH_JWKS: cannot read the file \/no\/such\/jwks.json/);
    const r2 = start({
      SERVICE: 'account',
      ...(await testAuth()).env('account'),
      SHARD_COUNT: '2',
      GLOBAL_DATABASE_URL: 'postgres://x/y',
    });
    expect(r2.status).not.toBe(0);
    expect(r2.out).toMatch(/SHARD_0_DATABASE_URL/);
  });

  it('starts the customer and product services, naming their own missing variables', async () => {
    const auth = await testAuth();
    const customer = start({ SERVICE: 'customer', ...auth.env('customer'), SHARD_0_DATABASE_URL: 'postgres://x/y' });
    expect(customer.status).not.toBe(0);
    expect(customer.out).toMatch(/invalid configuration: CUSTOMER_ID_HASH_KEY: is required/);
    const product = start({ SERVICE: 'product', ...auth.env('product') }, ['migrate']);
    expect(product.status).not.toBe(0);
    expect(product.out).toMatch(/invalid configuration: GLOBAL_DATABASE_URL: is required/);
  });

  it('runs the migration command with `migrate`', () => {
    const r = start({ SERVICE: 'account' }, ['migrate']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/invalid configuration: AUTH_JWKS/);
    expect(r.out).not.toMatch(/docker-entrypoint/);
  });

  it('migrates and serves from the image against a real database and NATS, and drains on SIGTERM', async () => {
    const db = `img_${randomUUID().slice(0, 8)}`;
    await createDatabases(inject('pgAdminUrl'), [db, `${db}_global`]);
    const port = await freePort();
    const env = {
      SERVICE: 'account',
      ...(await testAuth()).env('account'),
      SHARD_COUNT: '1',
      SHARD_0_DATABASE_URL: `${inject('pgUrl')}/${db}`,
      GLOBAL_DATABASE_URL: `${inject('pgUrl')}/${db}_global`,
      NATS_URL: inject('natsUrl'),
      GRPC_PORT: String(port),
      METRICS_PORT: '0',
      CUSTOMER_SERVICE_ADDRESS: '127.0.0.1:1',
      PRODUCT_SERVICE_ADDRESS: '127.0.0.1:2',
    };
    const migrated = start(env, ['migrate']);
    expect(migrated.status, migrated.out).toBe(0);

    const [entry, ...entryArgs] = image.final.entrypoint;
    const exe = entry!.startsWith('/') ? join(image.final.root, entry!) : join(app(), entry!);
    const server = spawn(exe, [...entryArgs, ...image.final.cmd], {
      cwd: app(),
      env: { PATH: process.env.PATH, HOME: image.dir, ...image.final.env, ...env },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    const client = promisify(
      new AccountServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
      await testToken(),
    );
    try {
      await expect
        .poll(async () => (await client.listSystemAccounts({}).catch(() => ({ accounts: [] }))).accounts.length, {
          timeout: 30_000,
          interval: 250,
        })
        .toBeGreaterThan(0);
    } finally {
      client.close();
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('mints an operator token with the command the chart\u2019s NOTES.txt gives, outside any pod', async () => {
    const notes = readFileSync(join(repoRoot, 'charts/corebank/templates/NOTES.txt'), 'utf8');
    // No pod holds the issuer key: the notes never mint inside one.
    expect(notes).not.toMatch(/exec .*mintToken/);
    // The notes name the first enabled service, account by default.
    const args = /npm run --silent token -- (.+)\)/
      .exec(notes.replaceAll('{{ $first }}', 'account'))?.[1]
      ?.split(/\s+/);
    expect(args, 'NOTES.txt has the token command').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'notes-key-'));
    try {
      const { keygen } = await import('./tools/keys.js');
      const { privatePath } = await keygen({ kid: 'issuer-1', outDir: dir, jwksPath: join(dir, 'jwks.json') });
      const r = spawnSync(
        process.execPath,
        [
          '--conditions=source',
          '--import',
          'tsx',
          'deploy/tools/token.ts',
          ...args!.map((a) => (a === './issuer.jwk.json' ? privatePath : a)),
        ],
        { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const [header, payload] = r.stdout.trim().split('.');
      expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toMatchObject({ alg: 'ES256', kid: 'issuer-1' });
      expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toMatchObject({
        sub: 'ops',
        iss: 'corebank',
        scope: 'accounts:read',
        aud: 'corebank.account',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a missing or unknown SERVICE or command with the list of services or commands', () => {
    const none = start({});
    expect(none.status).toBe(64);
    expect(none.out).toMatch(/SERVICE is not set; set it to one of: account customer loan payment product/);
    const unknown = start({ SERVICE: 'mainframe' });
    expect(unknown.status).toBe(64);
    expect(unknown.out).toMatch(
      /SERVICE="mainframe" is not in this image; services: account customer loan payment product/,
    );
    const kit = start({ SERVICE: 'kit' });
    expect(kit.status).toBe(64);
    expect(kit.out).toMatch(/SERVICE="kit" is not in this image; services: account customer loan payment product/);
    const traversal = start({ SERVICE: '../../etc' });
    expect(traversal.status).toBe(64);
    expect(traversal.out).toMatch(/is not a service name/);
    const command = start({ SERVICE: 'account' }, ['seed']);
    expect(command.status).toBe(64);
    expect(command.out).toMatch(/account: no command "seed"; use one of: serve, migrate, relay/);
  });
});
