// The account service: wires the ledger to gRPC, the outbox relay, the expiry sweeper and the close
// of business (day/close.ts).
import {
  bindService,
  createLogger,
  DomainError,
  followBusinessDate,
  requireCustomer,
  serviceIdentity,
  tokenVerifier,
  ShardRouter,
  startRuntime,
  type Logger,
  type Nats,
  type RunningServer,
} from '@corebank/kit';
import { AccountServiceService } from '@corebank/kit/gen/corebank/v1/account';
import { BusinessDayServiceService } from '@corebank/kit/gen/corebank/v1/day';
import { getBusinessDate, setBusinessDate } from './day/dates.js';
import { depositStep, productTerms } from './day/deposits.js';
import { accrualsOf, glStep, trialBalance } from './day/gl.js';
import { startCloseOfBusiness } from './day/close.js';
import {
  claimIdempotencyKey,
  validateBusinessDate,
  validateRunCloseOfBusiness,
  validateSetBusinessDate,
} from './day/validate.js';
import type { StepName, StepRunner } from './day/steps.js';
import { connectLoans, loanDayStep } from './clients/loans.js';
import { connectPeers } from './clients/peers.js';
import { openDepositAccount } from './opening.js';
import { createAccounts, ensureSystemAccounts, getAccount, listAccounts, listSystemAccounts } from './store.js';
import {
  validateAccountId,
  validateGetStatement,
  validateListAccounts,
  validateNewAccounts,
  validateOpenDeposit,
  validateOwner,
} from './validate.js';
import type { AccountConfig } from './config.js';
import { DOMAIN } from './events.js';
import { startExpirySweeper } from './expiry.js';
import { ShardBatcher } from './ledger/batcher.js';
import { routeTransfers } from './ledger/router.js';
import { transferToProto } from './proto.js';
import { BACKDATE_SCOPE, validateTransfers } from './ledger/validate.js';
import { checkInvariant, getStatement, getTransfer } from './reports.js';
import { closeOwnerAccounts, setOwnerDebitsBlocked } from './lifecycle.js';

export const SERVICE = 'account';
export const SERVICE_NAME = 'corebank.v1.AccountService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  createAccounts: 'accounts:write',
  getAccount: 'accounts:read',
  listAccounts: 'accounts:read',
  listSystemAccounts: 'ledger:read',
  createTransfers: 'transfers:write',
  getTransfer: 'accounts:read',
  getStatement: 'accounts:read',
  checkLedgerInvariant: 'ledger:admin',
  openDepositAccount: 'accounts:write',
  setOwnerDebitsBlocked: 'accounts:admin',
  closeOwnerAccounts: 'accounts:admin',
} as const;

/** Scopes of the bank's day (BusinessDayService, served by this service). */
export const DAY_SCOPES = {
  getBusinessDate: 'day:read',
  setBusinessDate: 'day:admin',
  runCloseOfBusiness: 'day:admin',
  getCloseOfBusiness: 'day:read',
  getTrialBalance: 'ledger:read',
  getAccruals: 'accounts:read',
} as const;

export interface AccountApp {
  server: RunningServer;
  router: ShardRouter;
  batchers: ShardBatcher[];
  nats: Nats;
  log: Logger;
  shutdown: () => Promise<void>;
}

export interface AccountOptions {
  /** Replaces close-of-business steps (tests of the coordinator and the workers). */
  cobSteps?: Partial<Record<StepName, StepRunner>>;
}

export async function startAccountService(
  config: AccountConfig,
  log: Logger = createLogger(SERVICE, config.logLevel),
  options: AccountOptions = {},
): Promise<AccountApp> {
  const verifier = await tokenVerifier(SERVICE, config, log);
  const identity = await serviceIdentity(SERVICE, config, log);
  const router = new ShardRouter(config.shards, config.shardUrls, config.dbPoolMax, SERVICE);
  const runtime = await startRuntime({ service: SERVICE, domain: DOMAIN, router, config, log });
  const { nats } = runtime;
  await ensureSystemAccounts(router, config.systemCurrencies);
  // Before any booking: the shards' copies of the business date follow the global one.
  const day = await followBusinessDate(config.globalDatabaseUrl, router, log, 4);
  const peers = connectPeers(config.customerServiceAddress, config.productServiceAddress, identity);
  const loans = connectLoans(config.loanServiceAddress, identity);
  const cob = await startCloseOfBusiness({
    config,
    db: day.db,
    router,
    nats,
    log,
    steps: {
      loans: loanDayStep(loans),
      deposits: depositStep({ router, terms: productTerms(peers) }),
      gl: glStep(),
      ...options.cobSteps,
    },
  });
  const batchers = router.shards.map((s) => new ShardBatcher(s, log, config.batchesInFlight));

  const sweeper =
    config.expirySweepIntervalMs > 0
      ? startExpirySweeper(router, batchers, config.expirySweepIntervalMs, log)
      : undefined;

  const binding = bindService(
    SERVICE_NAME,
    AccountServiceService,
    {
      async createAccounts(req, ctx) {
        validateNewAccounts(req.accounts);
        req.accounts.forEach((a, i) => requireCustomer(ctx.principal, a.ownerId, `accounts[${i}].owner_id`));
        return { results: await createAccounts(router, req.accounts) };
      },
      async getAccount(req, ctx) {
        const account = await getAccount(router, validateAccountId(req.accountId));
        requireCustomer(ctx.principal, account.ownerId, 'account_id');
        return { account };
      },
      async listAccounts(req, ctx) {
        const p = validateListAccounts(req.ownerId, req.page);
        requireCustomer(ctx.principal, req.ownerId, 'owner_id');
        const { accounts, nextPageToken } = await listAccounts(router, req.ownerId, p.size, p.after);
        return { accounts, page: { nextPageToken } };
      },
      async listSystemAccounts() {
        return { accounts: await listSystemAccounts(router) };
      },
      async createTransfers(req, ctx) {
        const inputs = validateTransfers(
          req.transfers,
          ctx.principal.customerId,
          ctx.principal.scopes.has(BACKDATE_SCOPE),
        );
        const outcomes = await routeTransfers(inputs, router, batchers, ctx.signal);
        // The expiry sweeper sleeps until the earliest hold it knows of: tell it about new ones.
        for (const o of outcomes)
          if (o.transfer?.expiresAt && !o.replayed) sweeper?.wakeAt(o.transfer.expiresAt.getTime());
        return {
          results: outcomes.map((o) => ({
            id: o.id,
            code: o.code,
            replayed: o.replayed,
            field: o.field,
            ...(o.transfer ? { transfer: transferToProto(o.transfer) } : {}),
          })),
        };
      },
      async getTransfer(req, ctx) {
        const accountId = req.accountId ? validateAccountId(req.accountId) : undefined;
        const res = await getTransfer(router, req.transferId, accountId);
        if (ctx.principal.customerId !== undefined) {
          const debit = await getAccount(router, res.transfer!.debitAccountId);
          const credit = await getAccount(router, res.transfer!.creditAccountId);
          if (debit.ownerId !== ctx.principal.customerId && credit.ownerId !== ctx.principal.customerId) {
            throw DomainError.notFound('transfer_id', 'transfer');
          }
        }
        return res;
      },
      async getStatement(req, ctx) {
        const p = validateGetStatement(req.accountId, req.page);
        const account = await getAccount(router, p.id);
        requireCustomer(ctx.principal, account.ownerId, 'account_id');
        const { entries, nextPageToken } = await getStatement(router, account.id, p.size, p.after);
        return { account, entries, page: { nextPageToken } };
      },
      async checkLedgerInvariant() {
        return checkInvariant(router);
      },
      async openDepositAccount(req, ctx) {
        validateOpenDeposit(req);
        // Customer ids are lower-case UUIDs: the same customer always derives the same account id.
        const customerId = req.customerId.toLowerCase();
        requireCustomer(ctx.principal, customerId, 'customer_id');
        return openDepositAccount({ router, peers }, { ...req, customerId }, ctx);
      },
      async setOwnerDebitsBlocked(req) {
        validateOwner(req.ownerId);
        return { accounts: await setOwnerDebitsBlocked(router, req.ownerId, req.blocked) };
      },
      async closeOwnerAccounts(req) {
        validateOwner(req.ownerId);
        return { accountsClosed: await closeOwnerAccounts(router, req.ownerId) };
      },
    },
    SCOPES,
    verifier,
    log,
  );

  const dayBinding = bindService(
    'corebank.v1.BusinessDayService',
    BusinessDayServiceService,
    {
      getBusinessDate: () => getBusinessDate(day),
      async setBusinessDate(req) {
        validateSetBusinessDate(req);
        await claimIdempotencyKey(day.db, 'SetBusinessDate', req.idempotencyKey, [req.businessDate, req.force]);
        return { businessDate: await setBusinessDate(day, req.businessDate, req.force) };
      },
      async runCloseOfBusiness(req) {
        validateRunCloseOfBusiness(req);
        await claimIdempotencyKey(day.db, 'RunCloseOfBusiness', req.idempotencyKey, [req.through]);
        return cob.run(req.through);
      },
      async getCloseOfBusiness(req) {
        validateBusinessDate(req.businessDate);
        return cob.get(req.businessDate);
      },
      getTrialBalance: (req) => trialBalance(router, req.businessDate, req.shard),
      async getAccruals(req, ctx) {
        const accruals = await accrualsOf(router, req.accountId, req.fromDate, req.toDate);
        // A customer's token reads its own accounts' accruals only.
        if (ctx.principal.customerId !== undefined) {
          const account = await getAccount(router, req.accountId.toLowerCase());
          requireCustomer(ctx.principal, account.ownerId, 'account_id');
        }
        return { accountId: req.accountId.toLowerCase(), accruals };
      },
    },
    DAY_SCOPES,
    verifier,
    log,
  );

  const server = await runtime.serve(
    [binding, dayBinding],
    [
      () => sweeper?.stop(),
      // A close of business in progress stops waiting; its run stays RUNNING and is resumed later.
      () => cob.stop(),
      () => peers.customers.close(),
      () => peers.products.close(),
      () => loans.close(),
      () => day.stop(),
    ],
  );
  return { server, router, batchers, nats, log, shutdown: server.shutdown };
}
