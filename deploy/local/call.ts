// `npm run call -- <Method> '<json request>'`: calls the local account service with the token
// that `npm run up` wrote to .local/token, and prints the response as JSON (proto3 JSON names).
import { readFileSync } from 'node:fs';
import { AccountServiceClient, AccountServiceService } from '@corebank/kit/gen/corebank/v1/account';
import { promisify } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';

const [method, json = '{}'] = process.argv.slice(2);
const def = AccountServiceService as Record<string, { originalName?: string; requestDeserialize: unknown }>;
const key = Object.keys(def).find((k) => def[k]!.originalName === method || k === method);
if (!key) {
  console.error(
    `usage: npm run call -- <${Object.values(def)
      .map((d) => d.originalName)
      .join('|')}> '<json>'`,
  );
  process.exit(2);
}
const address = process.env.ACCOUNT_ADDRESS ?? '127.0.0.1:50051';
const client = promisify(
  new AccountServiceClient(address, grpc.credentials.createInsecure()),
  readFileSync('.local/token', 'utf8').trim(),
);
const reqType = `${key[0]!.toUpperCase()}${key.slice(1)}Request`;
const resType = `${key[0]!.toUpperCase()}${key.slice(1)}Response`;
const mod = (await import('@corebank/kit/gen/corebank/v1/account')) as unknown as Record<
  string,
  { fromJSON(o: unknown): unknown; toJSON(o: unknown): unknown }
>;
try {
  const res = await (client as unknown as Record<string, (r: unknown) => Promise<unknown>>)[key]!(
    mod[reqType]!.fromJSON(JSON.parse(json)),
  );
  console.log(JSON.stringify(mod[resType]!.toJSON(res), null, 2));
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  client.close();
}
