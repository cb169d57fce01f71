// `npm run call -- <Service> <Method> '<json request>'`: calls a service of the local bank with the
// token `npm run up` wrote to .local/token, and prints the response as JSON (proto3 JSON names).
// `AuditService@<service>` reads that service's audit trail (AuditService alone: the account service's).
import { readFileSync } from 'node:fs';
import * as account from '@corebank/kit/gen/corebank/v1/account';
import * as audit from '@corebank/kit/gen/corebank/v1/audit';
import * as customer from '@corebank/kit/gen/corebank/v1/customer';
import * as day from '@corebank/kit/gen/corebank/v1/day';
import * as loan from '@corebank/kit/gen/corebank/v1/loan';
import * as payment from '@corebank/kit/gen/corebank/v1/payment';
import * as product from '@corebank/kit/gen/corebank/v1/product';
import { promisify } from '@corebank/kit/testing';
import * as grpc from '@grpc/grpc-js';

type Codec = { fromJSON(o: unknown): unknown; toJSON(o: unknown): unknown };
const [serviceArg = '', method, json = '{}'] = process.argv.slice(2);
const [serviceName, auditedService = 'account'] = serviceArg.split('@') as [string, string?];
const services = {
  AuditService: {
    mod: audit as unknown as Record<string, Codec>,
    Client: audit.AuditServiceClient,
    def: audit.AuditServiceService,
    name: auditedService,
  },
  AccountService: {
    mod: account as unknown as Record<string, Codec>,
    Client: account.AccountServiceClient,
    def: account.AccountServiceService,
    name: 'account',
  },
  BusinessDayService: {
    mod: day as unknown as Record<string, Codec>,
    Client: day.BusinessDayServiceClient,
    def: day.BusinessDayServiceService,
    name: 'account',
  },
  CustomerService: {
    mod: customer as unknown as Record<string, Codec>,
    Client: customer.CustomerServiceClient,
    def: customer.CustomerServiceService,
    name: 'customer',
  },
  LoanService: {
    mod: loan as unknown as Record<string, Codec>,
    Client: loan.LoanServiceClient,
    def: loan.LoanServiceService,
    name: 'loan',
  },
  PaymentService: {
    mod: payment as unknown as Record<string, Codec>,
    Client: payment.PaymentServiceClient,
    def: payment.PaymentServiceService,
    name: 'payment',
  },
  ProductService: {
    mod: product as unknown as Record<string, Codec>,
    Client: product.ProductServiceClient,
    def: product.ProductServiceService,
    name: 'product',
  },
};

const svc = services[serviceName as keyof typeof services];
const defs = (svc?.def ?? {}) as Record<string, { path: string }>;
const rpcName = (k: string) => defs[k]!.path.split('/').pop()!;
const key = Object.keys(defs).find((k) => rpcName(k) === method || k === method);
if (!svc || !key) {
  console.error(
    `usage: npm run call -- <${Object.keys(services).join('|')}>[@service, for AuditService] <Method> '<json request>'`,
  );
  if (svc) console.error(`methods: ${Object.keys(defs).map(rpcName).join(', ')}`);
  process.exit(2);
}
const localDir = process.env.LOCAL_DIR ?? '.local';
const bank = JSON.parse(readFileSync(`${localDir}/bank.json`, 'utf8')) as { addresses: Record<string, string> };
const client = promisify(
  new svc.Client(bank.addresses[svc.name]!, grpc.credentials.createInsecure()),
  readFileSync(`${localDir}/token`, 'utf8').trim(),
);
const type = (suffix: string) => svc.mod[`${key[0]!.toUpperCase()}${key.slice(1)}${suffix}`]!;
try {
  const res = await (client as unknown as Record<string, (r: unknown) => Promise<unknown>>)[key]!(
    type('Request').fromJSON(JSON.parse(json)),
  );
  console.log(JSON.stringify(type('Response').toJSON(res), null, 2));
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  client.close();
}
