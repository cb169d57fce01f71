// Promise-returning clients for tests, tools and the local launcher, with a minted bearer token.
import * as grpc from '@grpc/grpc-js';
import { mintToken } from '../auth.js';

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (e: grpc.ServiceError | null, r: Res) => void,
) => grpc.ClientUnaryCall;

export type Promisified<C> = {
  [K in keyof C as C[K] extends Unary<never, unknown> ? K : never]: C[K] extends Unary<infer Req, infer Res>
    ? (req: Req, opts?: { deadlineMs?: number; token?: string }) => Promise<Res>
    : never;
};

export const ALL_SCOPES = ['accounts:read', 'accounts:write', 'transfers:write', 'ledger:admin'];

export async function testToken(key: Uint8Array, scopes = ALL_SCOPES, customerId?: string): Promise<string> {
  return mintToken(key, { channel: 'test', scopes, ...(customerId ? { customerId } : {}) });
}

/** Wraps a generated grpc-js client so each unary method returns a promise and sends the token. */
export function promisify<C extends grpc.Client>(client: C, token: string): Promisified<C> & { close: () => void } {
  return new Proxy({} as Promisified<C> & { close: () => void }, {
    get(_t, prop: string) {
      if (prop === 'close') return () => client.close();
      const fn = (client as unknown as Record<string, Unary<unknown, unknown>>)[prop];
      if (typeof fn !== 'function') return undefined;
      return (req: unknown, opts: { deadlineMs?: number; token?: string } = {}) =>
        new Promise((resolve, reject) => {
          const md = new grpc.Metadata();
          const t = opts.token ?? token;
          if (t) md.set('authorization', `Bearer ${t}`);
          fn.call(client, req, md, { deadline: Date.now() + (opts.deadlineMs ?? 30_000) }, (err, res) =>
            err ? reject(err) : resolve(res),
          );
        });
    },
  });
}
