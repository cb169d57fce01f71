// The payment service: payment orders over gRPC, their saga (consumer and sweeper), the outbox
// relay, and the account service every payment books on.
import {
  bindService,
  bucketOfId,
  createLogger,
  DomainError,
  isCurrency,
  type Logger,
  type Nats,
  requireCustomer,
  type RunningServer,
  ShardRouter,
  startRuntime,
  Violations,
} from '@corebank/kit';
import { PaymentRoute, PaymentServiceService, PaymentStep } from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentConfig } from './config.js';
import { DOMAIN } from './events.js';
import { Ledger } from './ledger.js';
import { Saga } from './saga.js';
import {
  bodyHashOf,
  findPayment,
  insertPayment,
  listPayments,
  paymentIdFor,
  paymentToProto,
  replayOf,
} from './store.js';

export const SERVICE = 'payment';
export const SERVICE_NAME = 'corebank.v1.PaymentService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  createPayment: 'payments:write',
  getPayment: 'payments:read',
  listPayments: 'payments:read',
} as const;

const MAX_KEY = 128;
const MAX_REFERENCE = 140;

function accountIdField(v: Violations, field: string, value: string): void {
  if (!value) v.add(field, 'is required');
  else if (bucketOfId(value.toLowerCase()) === undefined) v.add(field, 'is not an account id');
}

export interface PaymentApp {
  server: RunningServer;
  router: ShardRouter;
  nats: Nats;
  ledger: Ledger;
  saga: Saga;
  log: Logger;
  shutdown: () => Promise<void>;
}

export async function startPaymentService(
  config: PaymentConfig,
  log: Logger = createLogger(SERVICE, config.logLevel),
): Promise<PaymentApp> {
  const router = new ShardRouter(config.shards, config.shardUrls, config.dbPoolMax, SERVICE);
  const runtime = await startRuntime({ service: SERVICE, domain: DOMAIN, router, config, log, relay: { idleMs: 20 } });
  const { nats } = runtime;
  const ledger = Ledger.connect(config.accountServiceAddress, config.authTokenKey, config.ledgerCallTimeoutMs);
  const saga = new Saga(router, ledger, log, {
    consumerName: config.sagaConsumerName,
    callTimeoutMs: config.ledgerCallTimeoutMs,
    maxBackoffMs: config.sagaMaxBackoffMs,
    sweepIntervalMs: config.sagaSweepIntervalMs,
  });
  await saga.start(config.sagaConsumerEnabled ? nats : undefined);

  const binding = bindService(
    SERVICE_NAME,
    PaymentServiceService,
    {
      async createPayment(req, ctx) {
        const v = new Violations();
        if (!req.idempotencyKey) v.add('idempotency_key', 'is required');
        else if (req.idempotencyKey.length > MAX_KEY) v.add('idempotency_key', `must be at most ${MAX_KEY} characters`);
        accountIdField(v, 'payer_account_id', req.payerAccountId);
        accountIdField(v, 'payee_account_id', req.payeeAccountId);
        if (req.payerAccountId && req.payerAccountId.toLowerCase() === req.payeeAccountId.toLowerCase()) {
          v.add('payee_account_id', 'must differ from payer_account_id');
        }
        if (req.amount <= 0n) v.add('amount', 'must be positive');
        if (!isCurrency(req.currency)) v.add('currency', 'must be an ISO 4217 code this bank books');
        if (req.reference.length > MAX_REFERENCE) v.add('reference', `must be at most ${MAX_REFERENCE} characters`);
        v.throwIfAny();

        const body = {
          payerAccountId: req.payerAccountId.toLowerCase(),
          payeeAccountId: req.payeeAccountId.toLowerCase(),
          amount: req.amount,
          currency: req.currency,
          reference: req.reference,
        };
        const payerBucket = bucketOfId(body.payerAccountId)!;
        const channel = ctx.principal.channel;
        const id = paymentIdFor(payerBucket, channel, req.idempotencyKey);
        const shard = router.byBucket(payerBucket);
        const hash = bodyHashOf(body);

        // A retry finds its order without asking the ledger anything.
        const existing = await findPayment(shard, id);
        if (existing) {
          requireCustomer(ctx.principal, existing.payer_customer_id, 'payer_account_id');
          return replayOf(existing, hash);
        }

        const payer = await ledger.account(body.payerAccountId, ctx.deadline);
        if (!payer) throw DomainError.notFound('payer_account_id', 'account');
        requireCustomer(ctx.principal, payer.ownerId, 'payer_account_id');
        if (payer.currency !== body.currency) {
          throw DomainError.invalid([
            { field: 'currency', description: `must be the payer account's currency (${payer.currency})` },
          ]);
        }
        const payeeShard = router.byId(body.payeeAccountId)!.index;
        const sameShard = payeeShard === payer.shard;
        if (!sameShard) {
          for (const s of [payer.shard, payeeShard]) {
            if (!(await ledger.inTransitAccount(s, body.currency, ctx.deadline))) {
              throw DomainError.invalid([
                {
                  field: 'currency',
                  description: `is not booked between shards (no in-transit ${body.currency} account)`,
                },
              ]);
            }
          }
        }
        const created = await insertPayment(shard, {
          ...body,
          id,
          channel,
          idempotencyKey: req.idempotencyKey,
          bodyHash: hash,
          payerCustomerId: payer.ownerId,
          route: sameShard ? PaymentRoute.PAYMENT_ROUTE_SAME_SHARD : PaymentRoute.PAYMENT_ROUTE_CROSS_SHARD,
          step: sameShard ? PaymentStep.PAYMENT_STEP_TRANSFER : PaymentStep.PAYMENT_STEP_HOLD,
          payerShard: payer.shard,
          payeeShard,
        });
        if (created.replayed) return { payment: created.payment, replayed: true };
        ctx.log.info({ payment_id: id, same_shard: sameShard }, 'payment accepted');
        // The first step inline (the transfer, or the hold): the caller learns at once whether the
        // money moved or was held. If it cannot be made now, the sweeper makes it later.
        const { row } = await saga.step(shard, id, ctx.deadline).catch((err: unknown) => {
          ctx.log.warn({ err, payment_id: id }, 'first payment step failed; the sweeper retries it');
          return { row: undefined };
        });
        const now = row ?? (await findPayment(shard, id))!;
        return { payment: paymentToProto(now), replayed: false };
      },

      async getPayment(req, ctx) {
        const id = req.paymentId.toLowerCase();
        const v = new Violations();
        if (!id) v.add('payment_id', 'is required');
        else if (bucketOfId(id) === undefined) v.add('payment_id', 'is not a payment id');
        v.throwIfAny();
        const row = await findPayment(router.byId(id)!, id);
        if (!row || (ctx.principal.customerId !== undefined && ctx.principal.customerId !== row.payer_customer_id)) {
          throw DomainError.notFound('payment_id', 'payment');
        }
        return { payment: paymentToProto(row) };
      },

      async listPayments(req, ctx) {
        const v = new Violations();
        if (!req.customerId) v.add('customer_id', 'is required');
        const size = req.page?.pageSize || 100;
        if (size > 1000) v.add('page.page_size', 'must be at most 1000');
        const token = req.page?.pageToken ?? '';
        if (token && !/^\d{1,19}$/.test(token)) v.add('page.page_token', 'is not a token from this list');
        v.throwIfAny();
        requireCustomer(ctx.principal, req.customerId, 'customer_id');
        const { payments, nextPageToken } = await listPayments(
          router.byCustomer(req.customerId),
          req.customerId,
          size,
          token ? BigInt(token) : undefined,
        );
        return { payments, page: { nextPageToken } };
      },
    },
    SCOPES,
    config.authTokenKey,
    log,
  );

  const server = await runtime.serve([binding], [() => saga.stop(), () => ledger.close()]);
  return { server, router, nats, ledger, saga, log, shutdown: server.shutdown };
}
