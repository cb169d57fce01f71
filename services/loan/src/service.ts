// The loan service: quotes, applications and their decisions, disbursement and repayments over
// gRPC, with its outbox relay. Handlers are thin: the rules live in terms.ts (products to
// schedules), scorecard.ts (decisions), waterfall.ts (repayment allocation) and store.ts (SQL).
import {
  bindService,
  createLogger,
  followBusinessDate,
  DomainError,
  type Logger,
  cursorUuid,
  enumValue,
  int64,
  type Nats,
  type Principal,
  type RpcContext,
  readPage,
  requireCustomer,
  type RunningServer,
  Violations,
  serviceIdentity,
  ShardRouter,
  startRuntime,
  tokenVerifier,
  readShardBusinessDate,
} from '@corebank/kit';
import { ApplicationState, LoanServiceService, LoanStatus } from '@corebank/kit/gen/corebank/v1/loan';
import { payoffQuote } from './payoff.js';
import { applyForLoan, bound, decideApplication, type Deps } from './applications.js';
import { ProductStatus, type ProductVersion } from '@corebank/kit/gen/corebank/v1/product';
import { Accounts } from './clients/accounts.js';
import { Customers } from './clients/customers.js';
import { Products } from './clients/products.js';
import type { LoanConfig } from './config.js';
import { DOMAIN } from './events.js';
import { scheduleToProto } from './proto.js';
import { checkRanges, formatRate, annualRateOf, loanTermsOf, scheduleFor } from './terms.js';
import {
  findApplication,
  findLoan,
  instalmentsOf,
  listApplications,
  listApplicationsQuery,
  listLoans,
  listLoansQuery,
  staleDisbursements,
  staleRepayments,
} from './store.js';
import { applicationToProto, instalmentsToProto, loanToProto } from './proto.js';
import { disburse, Sweeper } from './loans.js';
import { repayLoan, settle } from './repayments.js';
import { checkIdsOnShard, postPostings, runLoanDay, stalePostings } from './day.js';
import { postWriteOff, staleWriteOffs, writeOffLoan } from './writeoff.js';
import {
  findPartner,
  listPartners,
  listPartnersQuery,
  partnerIdField,
  PARTNER_ID,
  registerPartner,
} from './partners.js';
import { partnerToProto } from './colending.js';
import { partnerStatement } from './partner-statement.js';
import {
  amountField,
  bucketedIdField,
  customerIdField,
  dateField,
  idempotencyKeyField,
  validateApply,
  validateDecide,
  validatePreview,
  validateRunLoanDay,
  validateWriteOff,
} from './validate.js';

export const SERVICE = 'loan';
export const SERVICE_NAME = 'corebank.v1.LoanService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  previewSchedule: 'loans:read',
  applyForLoan: 'loans:write',
  getLoanApplication: 'loans:read',
  listLoanApplications: 'loans:read',
  decideLoanApplication: 'loans:admin',
  getLoan: 'loans:read',
  listLoans: 'loans:read',
  getLoanSchedule: 'loans:read',
  repayLoan: 'loans:write',
  getPayoffQuote: 'loans:read',
  payOff: 'loans:write',
  runLoanDay: 'loans:admin',
  writeOffLoan: 'loans:admin',
  registerPartnerLender: 'loans:admin',
  getPartnerLender: 'loans:admin',
  listPartnerLenders: 'loans:admin',
  getPartnerStatement: 'loans:admin',
} as const;

/** A (created_at in ms, id) page cursor. */
const timeCursor = ([at, id]: string[]) => {
  const ms = at !== undefined && /^\d{1,15}$/.test(at) ? Number(at) : undefined;
  const uuid = cursorUuid(id);
  return ms !== undefined && uuid ? { at: new Date(ms), id: uuid } : undefined;
};

/** A customer-bound token acts only on its own customer: it cannot review applications. */
function requireUnbound(p: Principal, what: string): void {
  if (p.customerId !== undefined) {
    throw new DomainError('PERMISSION_DENIED', 'CUSTOMER_TOKEN', `a token bound to a customer cannot ${what}`);
  }
}

export interface LoanApp {
  server: RunningServer;
  router: ShardRouter;
  nats: Nats;
  log: Logger;
  /** The bank's business date as this process last read it. */
  businessDate: () => string;
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
  const verifier = await tokenVerifier(SERVICE, config, log);
  const identity = await serviceIdentity(SERVICE, config);
  const timeout = config.peerCallTimeoutMs;
  const accounts = Accounts.connect(config.accountServiceAddress, identity, timeout);
  const customers = Customers.connect(config.customerServiceAddress, identity, timeout);
  const products = Products.connect(config.productServiceAddress, identity, timeout);
  // The business date: the shards' copies follow the global value, which the account service sets.
  const day = await followBusinessDate(config.globalDatabaseUrl, router, log);
  const businessDate = () => day.follower.date;
  const deps: Deps = {
    router,
    accounts,
    customers,
    products,
    scorecard: config.scorecard,
    saleable,
    log,
    businessDate,
  };
  const sweeper = new Sweeper(
    router,
    log,
    [
      { name: 'disbursement', stale: staleDisbursements, drive: (id) => disburse(deps, id) },
      { name: 'repayment', stale: staleRepayments, drive: (id) => settle(deps, id) },
      { name: 'write-off', stale: staleWriteOffs, drive: (id) => postWriteOff(deps, id) },
      {
        // A day's GL posting the run did not confirm: "<shard>:<posting id>".
        name: 'loan-day posting',
        stale: async (db, ageMs, limit) => {
          const shard = router.shards.findIndex((s) => s.db === db);
          return (await stalePostings(db, ageMs, limit)).map((p) => `${shard}:${p.id}`);
        },
        drive: async (key) => {
          const [index, id] = key.split(':') as [string, string];
          const shard = router.shards[Number(index)]!;
          const list = (await stalePostings(shard.db, 0, 1000)).filter((p) => p.id === id);
          return postPostings(deps, shard, list);
        },
      },
    ],
    config.disbursementSweepIntervalMs,
    config.disbursementSweepAgeMs,
  );
  sweeper.start();

  /** The loan named by `loan_id`, if the caller may see it (NOT_FOUND otherwise, as for one that does not exist). */
  const visibleLoan = async (value: string, ctx: RpcContext) => {
    const v = new Violations();
    const id = bucketedIdField(v, 'loan_id', value, 'a loan id');
    v.throwIfAny();
    const shard = router.byId(id!)!;
    const row = await findLoan(shard.db, id!);
    if (!row || !bound(ctx, row.customer_id)) throw DomainError.notFound('loan_id', 'loan');
    return { row, shard };
  };

  const binding = bindService(
    SERVICE_NAME,
    LoanServiceService,
    {
      async previewSchedule(req, ctx) {
        validatePreview(req);
        const product = saleable(await products.get(req.productId, req.productVersion, ctx.deadline));
        const terms = loanTermsOf(product);
        checkRanges(terms, req.amount, req.termMonths);
        const startDate = req.startDate || day.follower.date;
        const schedule = scheduleFor(terms, req.amount, req.termMonths, startDate);
        return {
          productId: product.productId,
          productVersion: product.version,
          startDate,
          schedule: scheduleToProto(schedule, terms.currency, formatRate(annualRateOf(terms))),
        };
      },

      async applyForLoan(req, ctx) {
        const ids = validateApply(req);
        requireCustomer(ctx.principal, ids.customerId, 'customer_id');
        return applyForLoan(deps, req, ids, ctx);
      },

      async getLoanApplication(req, ctx) {
        const v = new Violations();
        const id = bucketedIdField(v, 'application_id', req.applicationId, 'an application id');
        v.throwIfAny();
        const shard = router.byId(id!)!;
        const row = await findApplication(shard.db, id!);
        if (!row || !bound(ctx, row.customer_id)) throw DomainError.notFound('application_id', 'application');
        return { application: applicationToProto(row, shard.index) };
      },

      async listLoanApplications(req, ctx) {
        const v = new Violations();
        enumValue(v, 'state', req.state, ApplicationState, { allowUnspecified: true });
        const customerId = customerIdField(v, req.customerId, false) ?? '';
        const filter = { state: req.state, customerId };
        const { size, after } = readPage(v, req.page, listApplicationsQuery(filter), timeCursor);
        v.throwIfAny();
        if (!customerId) requireUnbound(ctx.principal, 'list applications of every customer');
        else requireCustomer(ctx.principal, customerId, 'customer_id');
        const res = await listApplications(router, filter, size, after);
        return { applications: res.applications, page: { nextPageToken: res.nextPageToken } };
      },

      async getLoan(req, ctx) {
        const { row, shard } = await visibleLoan(req.loanId, ctx);
        return { loan: loanToProto(row, shard.index) };
      },

      async listLoans(req, ctx) {
        const v = new Violations();
        const customerId = customerIdField(v, req.customerId);
        const { size, after } = readPage(v, req.page, listLoansQuery(customerId ?? ''), timeCursor);
        v.throwIfAny();
        requireCustomer(ctx.principal, customerId!, 'customer_id');
        const shard = router.byCustomer(customerId!);
        const res = await listLoans(shard, customerId!, size, after);
        return { loans: res.loans.map((l) => loanToProto(l, shard.index)), page: { nextPageToken: res.nextPageToken } };
      },

      async getLoanSchedule(req, ctx) {
        const { row, shard } = await visibleLoan(req.loanId, ctx);
        const rows = await instalmentsOf(shard.db, row.id);
        return {
          loan: loanToProto(row, shard.index),
          ...(rows.length ? { schedule: instalmentsToProto(row, rows) } : {}),
        };
      },

      async repayLoan(req, ctx) {
        const v = new Violations();
        const loanId = bucketedIdField(v, 'loan_id', req.loanId, 'a loan id');
        idempotencyKeyField(v, req.idempotencyKey);
        amountField(v, 'amount', req.amount);
        const from = req.fromAccountId
          ? bucketedIdField(v, 'from_account_id', req.fromAccountId, 'an account id')
          : undefined;
        v.throwIfAny();
        const { row } = await visibleLoan(loanId!, ctx);
        return repayLoan(deps, row, req, { kind: 'repay', amount: req.amount }, from, ctx);
      },

      async payOff(req, ctx) {
        const v = new Violations();
        const loanId = bucketedIdField(v, 'loan_id', req.loanId, 'a loan id');
        idempotencyKeyField(v, req.idempotencyKey);
        int64(v, 'expected_total', req.expectedTotal, { min: 0n });
        const from = req.fromAccountId
          ? bucketedIdField(v, 'from_account_id', req.fromAccountId, 'an account id')
          : undefined;
        v.throwIfAny();
        const { row } = await visibleLoan(loanId!, ctx);
        return repayLoan(deps, row, req, { kind: 'payoff', expectedTotal: req.expectedTotal }, from, ctx);
      },

      async getPayoffQuote(req, ctx) {
        const v = new Violations();
        bucketedIdField(v, 'loan_id', req.loanId, 'a loan id');
        dateField(v, 'as_of', req.asOf);
        v.throwIfAny();
        const { row, shard } = await visibleLoan(req.loanId, ctx);
        if (row.status !== LoanStatus.LOAN_STATUS_ACTIVE) {
          throw new DomainError(
            'FAILED_PRECONDITION',
            'LOAN_NOT_ACTIVE',
            `loan_id: the loan is ${LoanStatus[row.status]}`,
            [{ field: 'loan_id', description: 'is not active' }],
            { status: LoanStatus[row.status] },
          );
        }
        const asOf = req.asOf || (await readShardBusinessDate(shard.db));
        if (asOf < row.disbursed_on!) {
          throw new DomainError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'as_of: is before the disbursement date', [
            { field: 'as_of', description: 'is before the disbursement date' },
          ]);
        }
        const quote = payoffQuote(await instalmentsOf(shard.db, row.id), asOf);
        return { loan: loanToProto(row, shard.index), asOf, ...quote };
      },

      async runLoanDay(req, ctx) {
        const scope = validateRunLoanDay(req, router.shards.length);
        requireUnbound(ctx.principal, 'run a business day');
        if (scope.ids) checkIdsOnShard(router, req.shard, scope.ids);
        const shard = router.shards[req.shard]!;
        return runLoanDay(deps, { date: req.businessDate, shard, ...scope }, ctx.deadline);
      },

      async writeOffLoan(req, ctx) {
        const id = validateWriteOff(req);
        requireUnbound(ctx.principal, 'write off loans');
        return writeOffLoan(deps, id, req.idempotencyKey, req.reason, ctx.deadline);
      },

      async decideLoanApplication(req, ctx) {
        const id = validateDecide(req);
        requireUnbound(ctx.principal, 'decide applications');
        return decideApplication(deps, id, req, ctx);
      },

      // Co-lending (src/partners.ts, src/partner-statement.ts). A customer-bound token cannot.
      async registerPartnerLender(req, ctx) {
        requireUnbound(ctx.principal, 'register partner lenders');
        return registerPartner(deps, req, ctx);
      },

      async getPartnerLender(req, ctx) {
        const v = new Violations();
        partnerIdField(v, req.partnerId);
        v.throwIfAny();
        requireUnbound(ctx.principal, 'read partner lenders');
        const row = await findPartner(router, req.partnerId);
        if (!row) throw DomainError.notFound('partner_id', 'partner lender');
        return { partner: partnerToProto(row) };
      },

      async listPartnerLenders(req, ctx) {
        const v = new Violations();
        const { size, after } = readPage(v, req.page, listPartnersQuery, ([id]) =>
          id !== undefined && PARTNER_ID.test(id) ? id : undefined,
        );
        v.throwIfAny();
        requireUnbound(ctx.principal, 'list partner lenders');
        const res = await listPartners(router, size, after);
        return { partners: res.partners, page: { nextPageToken: res.nextPageToken } };
      },

      async getPartnerStatement(req, ctx) {
        requireUnbound(ctx.principal, 'read partner statements');
        return partnerStatement(router, req);
      },
    },
    SCOPES,
    verifier,
    log,
  );

  const server = await runtime.serve(
    [binding],
    [() => sweeper.stop(), () => day.stop(), () => accounts.close(), () => customers.close(), () => products.close()],
  );
  return { server, router, nats, log, businessDate, shutdown: server.shutdown };
}
