// The bank's services for the benchmark: each one its own child process, as in production
// (`node --conditions=source --import tsx services/<svc>/src/command.ts serve` with the
// environment of deploy/local/env.ts), migrated first, ready when its gRPC health says SERVING.
// Their CPU is measured per process tree (cpu.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createDatabases, freePort } from '@corebank/kit/testing';
import { migrateAllShards, ShardRouter, type Logger, type Migration } from '@corebank/kit';
import { localDatabases, localServiceEnv, type LocalService } from '../../deploy/local/env.js';
import { loadAccountConfig } from '../../services/account/src/config.js';
import { accountMigrations } from '../../services/account/src/migrations.js';
import { migrateGlobalDay } from '../../services/account/src/day/dates.js';
import { loadCustomerConfig } from '../../services/customer/src/config.js';
import { customerMigrations } from '../../services/customer/src/migrations.js';
import { globalRouter, loadProductConfig } from '../../services/product/src/config.js';
import { productMigrations } from '../../services/product/src/migrations.js';
import { loadPaymentConfig } from '../../services/payment/src/config.js';
import { paymentMigrations } from '../../services/payment/src/migrations.js';
import { loadLoanConfig } from '../../services/loan/src/config.js';
import { loanMigrations } from '../../services/loan/src/migrations.js';

export type BankService = LocalService;

export interface BankPorts {
  grpc: number;
  metrics: number;
}

/** Free gRPC and metrics ports for each service. */
export async function allocatePorts(services: readonly BankService[]): Promise<Record<BankService, BankPorts>> {
  const out: Partial<Record<BankService, BankPorts>> = {};
  for (const s of services) out[s] = { grpc: await freePort(), metrics: await freePort() };
  return out as Record<BankService, BankPorts>;
}

/**
 * Each service's environment: deploy/local/env.ts's, pointed at the others' ports, LOG_LEVEL=warn,
 * and `extra[service]` on top (the bench's own settings: admission limits, risk limits).
 */
export function serviceEnvs(
  services: readonly BankService[],
  o: {
    pgUrl: string;
    natsUrl: string;
    shards: number;
    /** AUTH_JWKS of every service, and the private key of each service that calls others. */
    authJwks: string;
    authServiceKeys: Partial<Record<BankService, string>>;
    customerIdHashKey: string;
    ports: Record<BankService, BankPorts>;
    extra?: Partial<Record<BankService, Record<string, string>>>;
  },
): Record<BankService, Record<string, string>> {
  const addresses = Object.fromEntries(services.map((s) => [s, `127.0.0.1:${o.ports[s].grpc}`]));
  const out: Partial<Record<BankService, Record<string, string>>> = {};
  for (const s of services) {
    out[s] = {
      ...localServiceEnv(s, {
        pgUrl: o.pgUrl,
        natsUrl: o.natsUrl,
        shards: o.shards,
        authJwks: o.authJwks,
        authServiceKeys: o.authServiceKeys,
        grpcPort: o.ports[s].grpc,
        metricsPort: o.ports[s].metrics,
        addresses,
        customerIdHashKey: o.customerIdHashKey,
      }),
      LOG_LEVEL: 'warn',
      ...(o.extra?.[s] ?? {}),
    };
  }
  return out as Record<BankService, Record<string, string>>;
}

/** Creates every service's databases and applies its migrations (as deploy/local/up.ts does). */
export async function migrateServices(
  adminUrl: string,
  shards: number,
  envs: Partial<Record<BankService, Record<string, string>>>,
  log: Logger,
): Promise<void> {
  const plans: [BankService, () => ShardRouter, Migration[]][] = [];
  const services = Object.keys(envs) as BankService[];
  await createDatabases(adminUrl, [...new Set(services.flatMap((s) => localDatabases(s, shards)))]);
  for (const s of services) {
    const env = envs[s]!;
    const sharded = (c: { shards: ShardRouter['map']; shardUrls: string[] }) =>
      new ShardRouter(c.shards, c.shardUrls, 2, s);
    if (s === 'account') plans.push([s, () => sharded(loadAccountConfig(env)), accountMigrations]);
    if (s === 'customer') plans.push([s, () => sharded(loadCustomerConfig(env)), customerMigrations]);
    if (s === 'payment') plans.push([s, () => sharded(loadPaymentConfig(env)), paymentMigrations]);
    if (s === 'product') plans.push([s, () => globalRouter(loadProductConfig(env), 2, s), productMigrations]);
    if (s === 'loan') plans.push([s, () => sharded(loadLoanConfig(env)), loanMigrations]);
  }
  await Promise.all(
    plans.map(async ([, make, migrations]) => {
      const router = make();
      try {
        await migrateAllShards(router, migrations, log);
      } finally {
        await router.close();
      }
    }),
  );
  if (envs.account) await migrateGlobalDay(loadAccountConfig(envs.account).globalDatabaseUrl, 'account');
}

export interface ServiceProcess {
  name: BankService;
  pid: number;
  address: string;
  metricsPort: number;
  child: ChildProcess;
  /** The last 20,000 characters it wrote. */
  log: () => string;
  exited: () => boolean;
  stop: (graceMs?: number) => Promise<void>;
}

export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
  });
}

/**
 * Runs a command to its end: its stdout (echoed with `echo`) and the last 200,000 characters of
 * its stderr. `onSpawn` gets the child (to stop it at cleanup, or to signal it).
 */
export function runChild(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; cwd: string; echo?: boolean; onSpawn?: (child: ChildProcess) => void },
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    o.onSpawn?.(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (o.echo) process.stdout.write(d);
    });
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out, err }));
  });
}

/** Starts `services/<name>/src/command.ts serve` as a child process. */
export function spawnService(
  root: string,
  name: BankService,
  env: Record<string, string>,
  o: { cpuProfDir?: string; onExit: (name: BankService, how: string, log: string) => void },
): ServiceProcess {
  const args = ['--conditions=source', '--import', 'tsx'];
  if (o.cpuProfDir) args.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`);
  args.push(join(root, `services/${name}/src/command.ts`), 'serve');
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  let stopping = false;
  child.once('exit', (code, signal) => {
    exited = true;
    if (!stopping) o.onExit(name, String(code ?? signal), log);
  });
  return {
    name,
    pid: child.pid!,
    address: `127.0.0.1:${env.GRPC_PORT}`,
    metricsPort: Number(env.METRICS_PORT),
    child,
    log: () => log,
    exited: () => exited,
    stop: (graceMs = 20_000) => {
      stopping = true;
      return stopChild(child, graceMs);
    },
  };
}

/** Whether the gRPC health service says SERVING for the server as a whole (service ""). */
function healthCheck(address: string, timeoutMs: number): Promise<boolean> {
  const c = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<boolean>((resolve) => {
    c.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0), // HealthCheckRequest { service: "" }
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        c.close();
        // HealthCheckResponse { status: SERVING (1) } is the two bytes 08 01.
        resolve(!err && !!res && res.length >= 2 && res[0] === 0x08 && res[1] === 0x01);
      },
    );
  });
}

/** Waits until every service reports SERVING; throws with the service's log when one does not. */
export async function waitReady(services: ServiceProcess[], timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  await Promise.all(
    services.map(async (s) => {
      for (;;) {
        if (s.exited()) throw new Error(`the ${s.name} service exited while starting:\n${s.log().slice(-4000)}`);
        if (await healthCheck(s.address, 2000)) return;
        if (Date.now() > until)
          throw new Error(
            `the ${s.name} service did not become ready in ${timeoutMs / 1000}s:\n${s.log().slice(-4000)}`,
          );
        await new Promise((r) => setTimeout(r, 250));
      }
    }),
  );
}

/** A service's Prometheus text. */
export async function metricsOf(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}
