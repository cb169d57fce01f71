// Promise-returning gRPC clients with a bearer token: how services call one another (and how
// tests and tools call services). A call made while serving an RPC passes its deadline on.
import * as grpc from '@grpc/grpc-js';
import { customerTokenOf, mintToken, ON_BEHALF_OF_HEADER, type Principal } from '../auth.js';
import type { ServiceIdentity } from '../auth-setup.js';
import { allowedScopes, audienceOf, type ServiceName } from '../identities.js';
import { channelCredentials } from './tls.js';

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (e: grpc.ServiceError | null, r: Res) => void,
) => grpc.ClientUnaryCall;

export type Promisified<C> = {
  [K in keyof C as C[K] extends Unary<never, unknown> ? K : never]: C[K] extends Unary<infer Req, infer Res>
    ? (req: Req, opts?: CallOpts) => Promise<Res>
    : never;
};

/** Wraps a generated grpc-js client so each unary method returns a promise and sends the token. */
export interface CallOpts {
  /** Milliseconds from now; default 30 s. */
  deadlineMs?: number;
  /** An absolute deadline, e.g. the one of the RPC being served (wins over deadlineMs). */
  deadline?: Date;
  /** Overrides the client's token for this call ('' sends none). */
  token?: string;
  /**
   * The caller this call is made for: when its token is bound to a customer, that token travels
   * along (header corebank-on-behalf-of) and the called service binds the call to the customer.
   */
  onBehalfOf?: Principal;
}

export function promisify<C extends grpc.Client>(client: C, token: string): Promisified<C> & { close: () => void } {
  return new Proxy({} as Promisified<C> & { close: () => void }, {
    get(_t, prop: string) {
      if (prop === 'close') return () => client.close();
      const fn = (client as unknown as Record<string, Unary<unknown, unknown>>)[prop];
      if (typeof fn !== 'function') return undefined;
      return (req: unknown, opts: CallOpts = {}) =>
        new Promise((resolve, reject) => {
          const md = new grpc.Metadata();
          const t = opts.token ?? token;
          if (t) md.set('authorization', `Bearer ${t}`);
          const forwarded = opts.onBehalfOf && customerTokenOf(opts.onBehalfOf);
          if (forwarded) md.set(ON_BEHALF_OF_HEADER, forwarded);
          fn.call(
            client,
            req,
            md,
            { deadline: opts.deadline ?? Date.now() + (opts.deadlineMs ?? 30_000) },
            (err, res) => (err ? reject(err) : resolve(res)),
          );
        });
    },
  });
}

/**
 * The deadline of a call made on behalf of another: the caller's deadline, or this call's own
 * timeout when that comes first (a dependency's slowness must not use up a caller's whole budget,
 * and a caller that has gone must not be outlived).
 */
export function callDeadline(outer: Date | undefined, timeoutMs: number): Date {
  const own = Date.now() + timeoutMs;
  return outer && outer.getTime() < own ? outer : new Date(own);
}

/**
 * Channel options of the clients services call one another with. grpc-js waits between failed
 * connection attempts from 1 s growing x1.6 up to 120 s, reset only once connected: after a
 * dependency was down for a while (crash loop, rolling restart, lost node) a caller kept failing
 * its calls fast long after the dependency was back (measured: about 17 s after a 30 s outage of
 * the account service, and up to two minutes after longer ones). With 0.5 s growing to at most
 * 2 s, a caller is back at most about 2 s after its dependency; one connection attempt every 2 s
 * per caller costs nothing. Keepalive pings (only while calls are in flight) find a peer that
 * vanished without closing its connections (host lost, network partition) in about 40 s instead
 * of waiting for TCP to give up.
 */
export const SERVICE_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 500,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};

/**
 * A client for another corebank service. It signs its own short-lived tokens with this service's
 * key (subject: this service; audience: the target; scopes: exactly what identities.ts allows
 * this service towards the target) and renews them before they expire. With certificates
 * configured it connects over mutual TLS, presenting this service's certificate.
 */
export function serviceClient<C extends grpc.Client>(
  Ctor: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => C,
  address: string,
  identity: ServiceIdentity,
  target: ServiceName,
): Promisified<C> & { close: () => void } {
  const scopes = allowedScopes(identity.service, target);
  if (scopes.length === 0) throw new Error(`identities.ts allows ${identity.service} no calls to ${target}`);
  // Mutual TLS when the service has certificates (identity.tls), plaintext otherwise.
  const client = new Ctor(address, channelCredentials(identity.tls), SERVICE_CHANNEL_OPTIONS);
  let token: Promise<string> | undefined;
  let renewAt = 0;
  const fresh = () => {
    if (!token || Date.now() >= renewAt) {
      renewAt = Date.now() + 150_000;
      token = mintToken(identity.key, {
        channel: identity.service,
        scopes,
        audience: audienceOf(target),
        issuer: identity.issuer,
        ttlSeconds: 300,
      });
      token.catch(() => (renewAt = 0));
    }
    return token;
  };
  const inner = promisify(client, '');
  return new Proxy(inner, {
    get(wrapped, prop: string) {
      const fn = (wrapped as Record<string, unknown>)[prop];
      if (prop === 'close' || typeof fn !== 'function') return fn;
      return async (req: unknown, opts: CallOpts = {}) =>
        (fn as (r: unknown, o: CallOpts) => Promise<unknown>)(req, { ...opts, token: await fresh() });
    },
  });
}
