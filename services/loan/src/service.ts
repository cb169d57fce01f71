// The loan service: quotes, applications and their decisions, disbursement and repayments over
// gRPC, with its outbox relay. Handlers are thin: the rules live in terms.ts (products to
// schedules), scorecard.ts (decisions), waterfall.ts (repayment allocation) and store.ts (SQL).
import {
  bindService,
  createLogger,
  DomainError,
  type Logger,
  type Nats,
  type RunningServer,
  ShardRouter,
  startRuntime,
} from '@corebank/kit';
import { LoanServiceService } from '@corebank/kit/gen/corebank/v1/loan';
import { ProductStatus, type ProductVersion } from '@corebank/kit/gen/corebank/v1/product';
import { Accounts } from './clients/accounts.js';
import { Customers } from './clients/customers.js';
import { Products } from './clients/products.js';
import type { LoanConfig } from './config.js';
import { DOMAIN } from './events.js';
import { scheduleToProto } from './proto.js';
import { checkRanges, formatRate, annualRateOf, loanTermsOf, scheduleFor } from './terms.js';
import { todayUtc, validatePreview } from './validate.js';

export const SERVICE = 'loan';
export const SERVICE_NAME = 'corebank.v1.LoanService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  previewSchedule: 'loans:read',
} as const;

export interface LoanApp {
  server: RunningServer;
  router: ShardRouter;
  nats: Nats;
  log: Logger;
  shutdown: () => Promise<void>;
}

/** A product version loans can be sold on: a PUBLISHED loan product (a retired one sells no more). */
export function saleable(p: ProductVersion): ProductVersion {
  loanTermsOf(p);
  if (p.status !== ProductStatus.PRODUCT_STATUS_PUBLISHED) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'PRODUCT_NOT_PUBLISHED',
      'product_version: loans are sold only on a published version',
      [{ field: 'product_version', description: 'is not published' }],
    );
  }
  return p;
}

export async function startLoanService(
  config: LoanConfig,
  log: Logger = createLogger(SERVICE, config.logLevel),
): Promise<LoanApp> {
  const router = new ShardRouter(config.shards, config.shardUrls, config.dbPoolMax, SERVICE);
  const runtime = await startRuntime({ service: SERVICE, domain: DOMAIN, router, config, log });
  const { nats } = runtime;
  const timeout = config.peerCallTimeoutMs;
  const accounts = Accounts.connect(config.accountServiceAddress, config.authTokenKey, timeout);
  const customers = Customers.connect(config.customerServiceAddress, config.authTokenKey, timeout);
  const products = Products.connect(config.productServiceAddress, config.authTokenKey, timeout);

  const binding = bindService(
    SERVICE_NAME,
    LoanServiceService,
    {
      async previewSchedule(req, ctx) {
        validatePreview(req);
        const product = saleable(await products.get(req.productId, req.productVersion, ctx.deadline));
        const terms = loanTermsOf(product);
        checkRanges(terms, req.amount, req.termMonths);
        const startDate = req.startDate || todayUtc();
        const schedule = scheduleFor(terms, req.amount, req.termMonths, startDate);
        return {
          productId: product.productId,
          productVersion: product.version,
          startDate,
          schedule: scheduleToProto(schedule, terms.currency, formatRate(annualRateOf(terms))),
        };
      },
    },
    SCOPES,
    config.authTokenKey,
    log,
  );

  const server = await runtime.serve(
    [binding],
    [() => accounts.close(), () => customers.close(), () => products.close()],
  );
  return { server, router, nats, log, shutdown: server.shutdown };
}
