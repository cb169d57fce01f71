// The customer service: wires customers, KYC, lifecycle and risk tier to gRPC, the outbox relay
// and the account service (which freezing, unfreezing and closing call).
import {
  bindService,
  createLogger,
  DomainError,
  type Logger,
  type Nats,
  type Principal,
  requireCustomer,
  type RpcContext,
  type RunningServer,
  ShardRouter,
  serviceIdentity,
  startRuntime,
  tokenVerifier,
  Violations,
} from '@corebank/kit';
import {
  CustomerServiceService,
  CustomerStatus as S,
  KycStatus as K,
  PostalAddress,
  type Customer,
} from '@corebank/kit/gen/corebank/v1/customer';
import { accountClient, fromAccountService, type AccountClient } from './clients/account.js';
import type { CustomerConfig } from './config.js';
import { customerUpdated, DOMAIN, kycChanged, riskTierChanged, statusChanged } from './events.js';
import { customerToProto } from './proto.js';
import { readSearchPage, searchCustomers } from './search.js';
import { kycTransition, requireNotClosed, statusTransition } from './state.js';
import {
  createCustomer,
  getCustomer,
  getCustomerRow,
  mutateCustomer,
  requireLease,
  withLease,
  type Change,
} from './store.js';
import {
  validateContact,
  validateCreate,
  validateCustomerId,
  validateListFilters,
  validateReason,
  validateRiskTier,
  validateUpdateMask,
} from './validate.js';

export const SERVICE = 'customer';
export const SERVICE_NAME = 'corebank.v1.CustomerService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  createCustomer: 'customers:write',
  getCustomer: 'customers:read',
  updateContact: 'customers:write',
  listCustomers: 'customers:read',
  submitKyc: 'customers:write',
  decideKyc: 'customers:admin',
  freezeCustomer: 'customers:admin',
  unfreezeCustomer: 'customers:admin',
  closeCustomer: 'customers:admin',
  setRiskTier: 'customers:admin',
} as const;

/** A customer-bound token acts only on its own customer: it can neither onboard nor search. */
function requireUnbound(p: Principal, what: string): void {
  if (p.customerId !== undefined) {
    throw new DomainError('PERMISSION_DENIED', 'CUSTOMER_TOKEN', `a token bound to a customer cannot ${what}`);
  }
}

/** Validates the customer id (and reason) and the token's right to act on that customer. */
function target(id: string, ctx: RpcContext, reason?: { value: string; required?: boolean }): string {
  const v = new Violations();
  if (!id) v.add('customer_id', 'is required');
  if (reason) validateReason(v, reason.value, reason.required);
  v.throwIfAny();
  validateCustomerId(id);
  requireCustomer(ctx.principal, id.toLowerCase(), 'customer_id');
  return id.toLowerCase();
}

const kycChange = (to: K, reason: string) => ({
  set: { kyc_status: to, kyc_reason: reason },
});

export interface CustomerApp {
  server: RunningServer;
  router: ShardRouter;
  nats: Nats;
  accounts: AccountClient;
  log: Logger;
  shutdown: () => Promise<void>;
}

export async function startCustomerService(
  config: CustomerConfig,
  log: Logger = createLogger(SERVICE, config.logLevel),
): Promise<CustomerApp> {
  const verifier = await tokenVerifier(SERVICE, config, log);
  const identity = await serviceIdentity(SERVICE, config, log);
  const router = new ShardRouter(config.shards, config.shardUrls, config.dbPoolMax, SERVICE);
  const runtime = await startRuntime({ service: SERVICE, domain: DOMAIN, router, config, log });
  const { nats } = runtime;
  const accounts = accountClient(config.accountServiceAddress, identity);
  const key = config.idHashKey;

  const kycTo = (id: string, to: K, reason: string) =>
    mutateCustomer(router, id, (row): Change | undefined => {
      requireNotClosed(row.status);
      if (kycTransition(row.kyc_status, to) === 'unchanged') return undefined;
      return {
        ...kycChange(to, reason),
        events: (after, at) => [kycChanged(after, row.kyc_status, to, reason, at)],
      };
    });

  /** Records a lifecycle status under the operation's lease; unchanged when it already holds. */
  const recordStatus = (id: string, leaseId: string, to: S, reason: string) =>
    mutateCustomer(router, id, (row): Change | undefined => {
      requireLease(row, leaseId);
      if (statusTransition(row.status, to) === 'unchanged') return undefined;
      return {
        set: { status: to, status_reason: reason },
        events: (after, at) => [statusChanged(after, row.status, to, reason, at)],
      };
    });

  // The ledger answers NOT_FOUND for an owner with no accounts (and writes nothing), so a
  // customer without accounts yet has nothing to block, unblock or close: that is success here,
  // and the customer's own status (FROZEN, CLOSED) is what refuses new deposit accounts
  // (OpenDepositAccount requires an ACTIVE customer). What this no longer covers: an
  // OpenDepositAccount that read ACTIVE just before a freeze or close and books the account just
  // after the ledger answered NOT_FOUND; that account opens unblocked. Other ledger verdicts
  // (a balance not at zero, an outage) still fail the operation.
  const setDebitsBlocked = async (id: string, blocked: boolean, ctx: RpcContext) => {
    try {
      await accounts.setOwnerDebitsBlocked({ ownerId: id, blocked }, { deadline: ctx.deadline });
    } catch (err) {
      const e = fromAccountService(err, 'SetOwnerDebitsBlocked');
      if (e.code !== 'NOT_FOUND') throw e;
    }
  };

  const closeAccounts = async (id: string, ctx: RpcContext): Promise<number> => {
    try {
      return (await accounts.closeOwnerAccounts({ ownerId: id }, { deadline: ctx.deadline })).accountsClosed;
    } catch (err) {
      const e = fromAccountService(err, 'CloseOwnerAccounts');
      if (e.code === 'NOT_FOUND') return 0;
      throw e;
    }
  };

  const binding = bindService(
    SERVICE_NAME,
    CustomerServiceService,
    {
      async createCustomer(req, ctx) {
        requireUnbound(ctx.principal, 'onboard customers');
        validateCreate(req);
        const res = await createCustomer(router, key, ctx.principal.channel, req);
        // Audited on the new customer's home shard (the request names no customer yet).
        ctx.auditShard = res.customer.shard;
        if (!res.replayed) ctx.log.info({ customer_id: res.customer.id }, 'customer created');
        return res;
      },

      async getCustomer(req, ctx) {
        const id = target(req.customerId, ctx);
        return { customer: await getCustomer(router, id) };
      },

      async updateContact(req, ctx) {
        const v = new Violations();
        const fields = validateUpdateMask(v, req.updateMask);
        validateContact(v, req.contact, fields);
        v.throwIfAny();
        const id = target(req.customerId, ctx);
        return mutateCustomer(router, id, (row): Change | undefined => {
          requireNotClosed(row.status);
          if (req.expectedVersion && req.expectedVersion !== row.version) {
            throw new DomainError(
              'ABORTED',
              'VERSION_MISMATCH',
              `expected_version: the customer is at version ${row.version}`,
              [],
              { version: String(row.version) },
            );
          }
          const set: Record<string, unknown> = {};
          const changed: string[] = [];
          const c = req.contact;
          if (fields.includes('email') && (c?.email ?? '') !== row.email) {
            set.email = c?.email ?? '';
            changed.push('email');
          }
          if (fields.includes('phone') && (c?.phone ?? '') !== row.phone) {
            set.phone = c?.phone ?? '';
            changed.push('phone');
          }
          if (fields.includes('address')) {
            const next = c?.address ? JSON.stringify(PostalAddress.toJSON(c.address)) : null;
            const now = row.address ? JSON.stringify(PostalAddress.toJSON(PostalAddress.fromJSON(row.address))) : null;
            if (next !== now) {
              set.address = next;
              changed.push('address');
            }
          }
          if (!changed.length) return undefined;
          return { set, events: (after, at) => [customerUpdated(after, changed, at)] };
        });
      },

      async listCustomers(req, ctx) {
        requireUnbound(ctx.principal, 'search customers');
        const v = new Violations();
        validateListFilters(v, req);
        const { size, after } = readSearchPage(v, req, key);
        v.throwIfAny();
        const { customers, nextPageToken } = await searchCustomers(router, key, req, size, after, ctx.signal);
        return { customers, page: { nextPageToken } };
      },

      async submitKyc(req, ctx) {
        const id = target(req.customerId, ctx);
        return kycTo(id, K.KYC_STATUS_SUBMITTED, '');
      },

      async decideKyc(req, ctx) {
        const v = new Violations();
        if (req.decision !== K.KYC_STATUS_VERIFIED && req.decision !== K.KYC_STATUS_REJECTED) {
          v.add('decision', 'must be KYC_STATUS_VERIFIED or KYC_STATUS_REJECTED');
        }
        v.throwIfAny();
        const id = target(req.customerId, ctx, {
          value: req.reason,
          required: req.decision === K.KYC_STATUS_REJECTED,
        });
        return kycTo(id, req.decision, req.reason);
      },

      // Debits are blocked before FROZEN is recorded: whatever fails in between, the customer is
      // never recorded as frozen with spendable accounts, and a retry finishes the job.
      async freezeCustomer(req, ctx) {
        const id = target(req.customerId, ctx, { value: req.reason });
        return withLease(router, id, ctx.deadline, async (leaseId) => {
          const { row } = await getCustomerRow(router, id);
          statusTransition(row.status, S.CUSTOMER_STATUS_FROZEN);
          await setDebitsBlocked(id, true, ctx);
          const res = await recordStatus(id, leaseId, S.CUSTOMER_STATUS_FROZEN, req.reason);
          if (res.changed) ctx.log.info({ customer_id: id }, 'customer frozen');
          return res;
        });
      },

      // ACTIVE is recorded before debits are unblocked: a failure in between leaves debits blocked
      // (the safe side), and a retry, finding ACTIVE, unblocks them.
      async unfreezeCustomer(req, ctx) {
        const id = target(req.customerId, ctx, { value: req.reason });
        return withLease(router, id, ctx.deadline, async (leaseId) => {
          const { row } = await getCustomerRow(router, id);
          statusTransition(row.status, S.CUSTOMER_STATUS_ACTIVE);
          const res = await recordStatus(id, leaseId, S.CUSTOMER_STATUS_ACTIVE, req.reason);
          await setDebitsBlocked(id, false, ctx);
          if (res.changed) ctx.log.info({ customer_id: id }, 'customer unfrozen');
          return res;
        });
      },

      // The accounts are closed (all at zero, or nothing happens) before CLOSED is recorded.
      async closeCustomer(req, ctx) {
        const id = target(req.customerId, ctx, { value: req.reason });
        return withLease(router, id, ctx.deadline, async (leaseId) => {
          const { row, shard } = await getCustomerRow(router, id);
          if (statusTransition(row.status, S.CUSTOMER_STATUS_CLOSED) === 'unchanged') {
            return { customer: customerToProto(row, shard.index), changed: false, accountsClosed: 0 };
          }
          const accountsClosed = await closeAccounts(id, ctx);
          const res = await recordStatus(id, leaseId, S.CUSTOMER_STATUS_CLOSED, req.reason);
          if (res.changed) ctx.log.info({ customer_id: id, accounts_closed: accountsClosed }, 'customer closed');
          return { ...res, accountsClosed };
        });
      },

      async setRiskTier(req, ctx) {
        const v = new Violations();
        validateRiskTier(v, req.riskTier);
        v.throwIfAny();
        const id = target(req.customerId, ctx, { value: req.reason });
        return mutateCustomer(router, id, (row): Change | undefined => {
          requireNotClosed(row.status);
          if (row.risk_tier === req.riskTier) return undefined;
          return {
            set: { risk_tier: req.riskTier },
            events: (after: Customer, at) => [riskTierChanged(after, row.risk_tier, req.riskTier, req.reason, at)],
          };
        });
      },
    },
    SCOPES,
    verifier,
    log,
  );

  const server = await runtime.serve([binding], [() => accounts.close()]);
  return { server, router, nats, accounts, log, shutdown: server.shutdown };
}
