// gRPC server bootstrap: every unary handler runs behind the same interceptors (auth per RPC,
// deadline, logging, metrics, error mapping); the standard health service reports the real
// state of the service's dependencies; reflection serves the contract; SIGTERM drains.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { ON_BEHALF_OF_HEADER, requireScope, type Principal, type TokenVerifier } from '../auth.js';
import { AdmissionGate, type AdmissionLimits } from './admission.js';
import { serverCredentials, startHealthListener, type TlsFiles } from './tls.js';
import { isReadOnlyMethod, type AuditSink } from '../audit.js';
import { StartupError } from '../command.js';
import { DomainError, toServiceError } from '../errors.js';
import { descriptorSetBase64 } from '../gen/descriptor.js';
import type { Logger } from '../log.js';
import { grpcDuration, grpcRequests } from '../metrics.js';

export interface RpcContext {
  principal: Principal;
  /** Aborted when the caller cancels or its deadline passes: stop work, do not start new work. */
  signal: AbortSignal;
  deadline?: Date;
  log: Logger;
  /**
   * The shard the command acted on, for its audit record (see audit.ts); unset: derived from the
   * customer binding or the request's ids, else shard 0.
   */
  auditShard?: number;
}

export type UnaryHandler<Req, Res> = (req: Req, ctx: RpcContext) => Promise<Res>;

/** The async handlers a generated service definition (ts-proto's XxxService const) needs. */
type MethodsOf<D> = {
  [K in keyof D]: D[K] extends {
    requestDeserialize: (b: Buffer) => infer Req;
    responseSerialize: (v: infer Res) => Buffer;
  }
    ? UnaryHandler<Req, Res>
    : never;
};

export interface ServiceBinding {
  /** Fully qualified proto name, e.g. corebank.v1.AccountService (health reports it too). */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /** The server's admission limits, set by startServer (none until then: nothing is shed). */
  gate?: AdmissionGate;
  /** Where finished calls are recorded (runtime.serve attaches the service's AuditTrail; none: not recorded). */
  audit?: AuditSink;
  /** The verifier its calls are authenticated with (runtime.serve binds the AuditService with it too). */
  verifier: TokenVerifier;
}

/**
 * Wraps async handlers into grpc-js handlers. Every method must name the scope it requires:
 * a method missing from `scopes` does not compile, so no RPC is left unauthorised by accident.
 */
export function bindService<D extends grpc.ServiceDefinition>(
  name: string,
  definition: D,
  handlers: MethodsOf<D>,
  scopes: { [K in keyof D]: string },
  verifier: TokenVerifier,
  log: Logger,
): ServiceBinding {
  const implementation: grpc.UntypedServiceImplementation = {};
  const tolerant: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const binding: ServiceBinding = { name, definition: tolerant as grpc.ServiceDefinition, implementation, verifier };
  for (const method of Object.keys(definition) as (keyof D & string)[]) {
    tolerant[method] = tolerantOfMalformedBytes(definition[method] as grpc.MethodDefinition<unknown, unknown>);
    const handler = handlers[method] as UnaryHandler<unknown, unknown>;
    const scope = scopes[method];
    // Audited: every mutating method; a read only when its authentication failed.
    const rpc = (definition[method] as grpc.MethodDefinition<unknown, unknown>).path.split('/').pop() ?? method;
    const mutating = !isReadOnlyMethod(rpc);
    implementation[method] = (async (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const started = process.hrtime.bigint();
      const abort = new AbortController();
      const deadline = call.getDeadline();
      const deadlineAt =
        deadline instanceof Date ? deadline : Number.isFinite(deadline) ? new Date(deadline) : undefined;
      let timer: NodeJS.Timeout | undefined;
      call.on('cancelled', () =>
        abort.abort(new DomainError('DEADLINE_EXCEEDED', 'CANCELLED', 'the caller went away')),
      );
      let code = grpc.status.OK;
      // Shedding comes first, so a flood costs as little as possible per refused call.
      const gate = binding.gate;
      let admitted = false;
      /** Refused by the admission gate (capacity or the channel's rate): counted there, not audited. */
      let shed = false;
      let principal: Principal | undefined;
      let authFailed = false;
      let reason = '';
      let ctx: RpcContext | undefined;
      try {
        shed = true;
        gate?.enter(!mutating);
        shed = false;
        admitted = true;
        if (deadlineAt) {
          const left = deadlineAt.getTime() - Date.now();
          if (left <= 0)
            throw new DomainError('DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'the deadline passed before work began');
          timer = setTimeout(
            () => abort.abort(new DomainError('DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'deadline exceeded')),
            left,
          );
        }
        const authorization = call.metadata.get('authorization')[0];
        const onBehalfOf = call.metadata.get(ON_BEHALF_OF_HEADER)[0];
        try {
          principal = await verifier.authenticate(
            typeof authorization === 'string' ? authorization : undefined,
            typeof onBehalfOf === 'string' ? onBehalfOf : undefined,
          );
        } catch (err) {
          authFailed = true;
          throw err;
        }
        requireScope(principal, scope);
        shed = true;
        gate?.charge(principal.channel);
        shed = false;
        if (malformed.has(call.request as object)) {
          throw new DomainError('INVALID_ARGUMENT', 'MALFORMED_REQUEST', 'the request is not a valid protobuf message');
        }
        ctx = {
          principal,
          signal: abort.signal,
          deadline: deadlineAt,
          log: log.child({
            rpc: `${name}/${method}`,
            channel: principal.channel,
            ...(principal.onBehalfOf ? { on_behalf_of: principal.onBehalfOf } : {}),
          }),
        };
        const result = await handler(call.request, ctx);
        callback(null, result);
      } catch (err) {
        const e = toServiceError(err);
        code = e.code;
        reason = err instanceof DomainError ? err.reason : grpc.status[e.code];
        if (!(err instanceof DomainError)) log.error({ err, rpc: `${name}/${method}` }, 'unhandled error');
        else log.debug({ rpc: `${name}/${method}`, code: err.code, reason: err.reason }, err.message);
        callback(e);
      } finally {
        if (admitted) gate?.leave(!mutating, Number(process.hrtime.bigint() - started) / 1e6);
        // A shed call wrote nothing and is counted in grpc_admission_shed_total; recording it too
        // would turn a flood into database writes and events, the work shedding exists to avoid.
        if (binding.audit && (mutating || authFailed) && !shed) {
          try {
            binding.audit.record({
              service: name,
              method: rpc,
              principal,
              request: call.request,
              sha256: requestHashes.get(call.request as object),
              code,
              reason,
              metadata: call.metadata,
              shard: ctx?.auditShard,
            });
          } catch (err) {
            log.error({ err, rpc: `${name}/${method}` }, 'audit record not taken');
          }
        }
        if (timer) clearTimeout(timer);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        grpcRequests.inc({ service: name, method, code: grpc.status[code] });
        grpcDuration.observe({ service: name, method }, seconds);
      }
    }) as grpc.handleUnaryCall<unknown, unknown>;
  }
  return binding;
}

/** Stand-ins for requests whose bytes did not decode (one per call, so each has its own hash). */
const malformed = new WeakSet<object>();
/** SHA-256 of each request's serialized bytes, for its audit record. */
const requestHashes = new WeakMap<object, Buffer>();

/**
 * The method with a deserializer that never throws: grpc-js answers a throwing deserializer with
 * INTERNAL ("Error deserializing request"), which blames the server for the caller's bytes. The
 * handler turns the stand-in into INVALID_ARGUMENT instead (after authentication, as for any call).
 */
function tolerantOfMalformedBytes(m: grpc.MethodDefinition<unknown, unknown>): grpc.MethodDefinition<unknown, unknown> {
  return {
    ...m,
    requestDeserialize: (bytes: Buffer) => {
      let req: unknown;
      try {
        req = m.requestDeserialize(bytes);
      } catch {
        req = Object.freeze({ malformed: true });
        malformed.add(req as object);
      }
      if (typeof req === 'object' && req !== null) requestHashes.set(req, createHash('sha256').update(bytes).digest());
      return req;
    },
  };
}

/** Health service name the liveness probe asks for. */
export const LIVENESS = 'liveness';

export interface ServerOptions {
  host: string;
  port: number;
  services: ServiceBinding[];
  log: Logger;
  /** Checks the service's dependencies (databases, NATS); health is SERVING only while it resolves true. */
  ready: () => Promise<boolean>;
  maxConnectionAgeMs: number;
  shutdownGraceMs: number;
  readinessDrainMs: number;
  /** Called after the server stopped, in order: stop background work, drain NATS, close pools, flush telemetry. */
  onShutdown: (() => Promise<void>)[];
  /** Where calls are shed (see admission.ts); absent: never. */
  admission?: AdmissionLimits;
  /** The server's certificates (see tls.ts); absent: plaintext. */
  tls?: TlsFiles;
  /** A plaintext listener serving only health, for probes that cannot speak TLS; absent or 0: none. */
  healthPort?: number;
}

export interface RunningServer {
  port: number;
  /** The plaintext health listener's port, when there is one. */
  healthPort?: number;
  shutdown: () => Promise<void>;
  health: HealthImplementation;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const server = new grpc.Server({
    'grpc.max_connection_age_ms': o.maxConnectionAgeMs || undefined,
    'grpc.max_connection_age_grace_ms': o.maxConnectionAgeMs ? 30_000 : undefined,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  });
  const gate = o.admission ? new AdmissionGate(o.services.map((s) => s.name).join(','), o.admission) : undefined;
  for (const s of o.services) {
    s.gate = gate;
    server.addService(s.definition, s.implementation);
  }

  // Readiness ('' and each service) follows the dependencies; 'liveness' only says the process
  // is up, so an outage of a database or NATS takes pods out of rotation without restarting them.
  const names = ['', ...o.services.map((s) => s.name)];
  const health = new HealthImplementation({
    ...Object.fromEntries(names.map((n) => [n, 'NOT_SERVING' as const])),
    [LIVENESS]: 'SERVING',
  });
  health.addToServer(server);
  new ReflectionService(reflectedFiles()).addToServer(server);

  let stopping = false;
  const setAll = (status: 'SERVING' | 'NOT_SERVING') => names.forEach((n) => health.setStatus(n, status));
  const probe = async () => {
    if (stopping) return;
    const ok = await o.ready().catch(() => false);
    if (!stopping) setAll(ok ? 'SERVING' : 'NOT_SERVING');
  };
  await probe();
  const probeTimer = setInterval(() => void probe(), 5_000);
  probeTimer.unref();

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host}:${o.port}`, serverCredentials(o.tls), (err, p) => {
      if (!err) return resolve(p);
      clearInterval(probeTimer);
      // grpc-js words it "No address added out of total 1 resolved errors: [...]": say what to change.
      const inUse = /EADDRINUSE/.test(err.message);
      reject(
        new StartupError(
          `cannot listen on ${o.host}:${o.port}: ${inUse ? 'the port is in use' : err.message} (GRPC_PORT sets the port)`,
        ),
      );
    }),
  );
  const probes = o.healthPort
    ? await startHealthListener(health, o.host, o.healthPort).catch((err: Error) => {
        clearInterval(probeTimer);
        server.forceShutdown();
        throw new StartupError(
          `cannot listen on ${o.host}:${o.healthPort}: ${/EADDRINUSE/.test(err.message) ? 'the port is in use' : err.message} (GRPC_HEALTH_PORT sets the port)`,
        );
      })
    : undefined;
  o.log.info(
    {
      port,
      tls: o.tls ? (o.tls.mutual ? 'mutual' : 'server') : 'off',
      ...(probes ? { health_port: probes.port } : {}),
    },
    'gRPC server listening',
  );

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () =>
    (shuttingDown ??= (async () => {
      stopping = true;
      clearInterval(probeTimer);
      setAll('NOT_SERVING');
      // Let load balancers see NOT_SERVING before connections close.
      if (o.readinessDrainMs) await new Promise((r) => setTimeout(r, o.readinessDrainMs));
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          o.log.warn('grace period over: cutting remaining RPCs');
          server.forceShutdown();
          resolve();
        }, o.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      probes?.server.forceShutdown();
      for (const step of o.onShutdown) {
        await step().catch((err: unknown) => o.log.error({ err }, 'shutdown step failed'));
      }
      o.log.info('stopped');
    })());

  return { port, shutdown, health, ...(probes ? { healthPort: probes.port } : {}) };
}

/**
 * What reflection serves: every file of the contract and the health service, well-known types
 * included, as buf built them. (Handing @grpc/reflection a proto-loader definition drops the
 * well-known types, and grpcurl then cannot resolve google.protobuf.Timestamp.)
 */
function reflectedFiles(): PackageDefinition {
  const set = descriptor.FileDescriptorSet.decode(Buffer.from(descriptorSetBase64, 'base64')) as unknown as {
    file: object[];
  };
  const files = set.file.map((f) => descriptor.FileDescriptorProto.encode(f).finish());
  return { 'corebank.contract': { fileDescriptorProtos: files } } as unknown as PackageDefinition;
}

const require = createRequire(import.meta.url);
const descriptor = require('protobufjs/ext/descriptor') as {
  FileDescriptorSet: { decode(b: Uint8Array): unknown };
  FileDescriptorProto: { encode(f: object): { finish(): Uint8Array } };
};

/** SIGTERM and SIGINT run the shutdown once, then exit. */
export function exitOnSignals(shutdown: () => Promise<void>, log: Logger): void {
  const handler = (signal: string) => {
    log.info({ signal }, 'shutting down');
    shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}
