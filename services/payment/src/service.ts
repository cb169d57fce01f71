// The payment service: payment orders over gRPC, their saga (consumer and sweeper), the outbox
// relay, and the services every payment consults (the ledger; the customer's risk tier; the
// account's product limits).
import {
  bindService,
  createLogger,
  DomainError,
  type Logger,
  type Nats,
  requireCustomer,
  type RunningServer,
  ShardRouter,
  serviceIdentity,
  tokenVerifier,
  startRuntime,
  Violations,
} from '@corebank/kit';
import {
  PaymentKind,
  PaymentServiceService,
  PaymentStep,
  PendingDecision,
} from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentConfig } from './config.js';
import { cancelEscrow, confirmEscrow, openDispute, resolveDispute, reviewPayment } from './decisions.js';
import { DOMAIN } from './events.js';
import { Ledger } from './clients/ledger.js';
import { createPayment, type PaymentDeps } from './orders.js';
import { Peers } from './clients/peers.js';
import { customerIdField, listPaymentsPage, paymentIdField, pendingPage } from './validate.js';
import { createReturn } from './refunds.js';
import { Saga } from './saga.js';
import { paymentToProto } from './proto.js';
import { KeyClaims } from './keys.js';
import { findPayment, listPayments, orderBatches, refundsOf, waitingOrders } from './store.js';

export const SERVICE = 'payment';
export const SERVICE_NAME = 'corebank.v1.PaymentService';

/** Scopes a caller's token must hold, per RPC. */
export const SCOPES = {
  createPayment: 'payments:write',
  getPayment: 'payments:read',
  listPayments: 'payments:read',
  confirmEscrow: 'payments:write',
  cancelEscrow: 'payments:write',
  openDispute: 'payments:write',
  resolveDispute: 'payments:admin',
  reviewPayment: 'payments:admin',
  listPendingDecisions: 'payments:admin',
  refundPayment: 'payments:write',
  reversePayment: 'payments:admin',
} as const;

/** The step an order waits at for each of the bank's decisions. */
const WAITING_FOR: Partial<Record<PendingDecision, PaymentStep>> = {
  [PendingDecision.PENDING_DECISION_RISK_REVIEW]: PaymentStep.PAYMENT_STEP_AWAIT_REVIEW,
  [PendingDecision.PENDING_DECISION_DISPUTE]: PaymentStep.PAYMENT_STEP_AWAIT_DISPUTE_DECISION,
};

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
  const verifier = await tokenVerifier(SERVICE, config, log);
  const identity = await serviceIdentity(SERVICE, config, log);
  const router = new ShardRouter(config.shards, config.shardUrls, config.dbPoolMax, SERVICE);
  const runtime = await startRuntime({ service: SERVICE, domain: DOMAIN, router, config, log });
  const { nats } = runtime;
  const ledger = Ledger.connect(config.accountServiceAddress, identity, config.ledgerCallTimeoutMs);
  const peers = Peers.connect(
    config.customerServiceAddress,
    config.productServiceAddress,
    identity,
    config.ledgerCallTimeoutMs,
    config.riskTierCacheMs,
  );
  peers.watchCustomers(nats.nc);
  ledger.watchAccounts(nats.nc);
  // New orders' key claims and their writes, and the saga's step advances, are batched alike per
  // shard (ORDER_BATCHES_IN_FLIGHT, ORDER_BATCH_MAX).
  const batching =
    config.orderBatchesInFlight > 0
      ? { maxInFlight: config.orderBatchesInFlight, maxBatch: config.orderBatchMax }
      : undefined;
  const saga = new Saga(router, ledger, log, {
    consumerName: config.sagaConsumerName,
    callTimeoutMs: config.ledgerCallTimeoutMs,
    maxBackoffMs: config.sagaMaxBackoffMs,
    sweepIntervalMs: config.sagaSweepIntervalMs,
    ...(batching ? { advanceBatches: batching } : {}),
  });
  await saga.start(config.sagaConsumerEnabled ? nats : undefined);
  const deps: PaymentDeps = {
    router,
    keys: new KeyClaims(router, batching),
    ledger,
    peers,
    saga,
    config,
    ...(batching ? { orderBatches: orderBatches(router, batching.maxInFlight, batching.maxBatch) } : {}),
  };

  const binding = bindService(
    SERVICE_NAME,
    PaymentServiceService,
    {
      createPayment: (req, ctx) => createPayment(deps, req, ctx),

      async getPayment(req, ctx) {
        const id = req.paymentId.toLowerCase();
        const v = new Violations();
        paymentIdField(v, id);
        v.throwIfAny();
        const db = router.byId(id)!.db;
        const row = await findPayment(db, id);
        if (!row || (ctx.principal.customerId !== undefined && ctx.principal.customerId !== row.payer_customer_id)) {
          throw DomainError.notFound('payment_id', 'payment');
        }
        return { payment: paymentToProto(row), refunds: (await refundsOf(db, id)).map(paymentToProto) };
      },

      async listPayments(req, ctx) {
        const v = new Violations();
        customerIdField(v, req.customerId);
        const { size, after } = listPaymentsPage(v, req.customerId, req.page);
        v.throwIfAny();
        requireCustomer(ctx.principal, req.customerId, 'customer_id');
        const { payments, nextPageToken } = await listPayments(
          router.byCustomer(req.customerId),
          req.customerId,
          size,
          after,
        );
        return { payments, page: { nextPageToken } };
      },

      confirmEscrow: (req, ctx) => confirmEscrow(deps, req.paymentId, ctx),
      cancelEscrow: (req, ctx) => cancelEscrow(deps, req.paymentId, req.note, ctx),
      openDispute: (req, ctx) => openDispute(deps, req.paymentId, req.note, ctx),
      resolveDispute: (req, ctx) => resolveDispute(deps, req.paymentId, req.resolution, req.note, ctx),
      reviewPayment: (req, ctx) => reviewPayment(deps, req.paymentId, req.decision, req.note, ctx),

      async listPendingDecisions(req) {
        const v = new Violations();
        const step = WAITING_FOR[req.decision];
        if (step === undefined) v.add('decision', 'must be RISK_REVIEW or DISPUTE');
        const { size, after } = pendingPage(v, step, req.page);
        v.throwIfAny();
        const { payments, nextPageToken } = await waitingOrders(router, step!, size, after);
        return { payments, page: { nextPageToken } };
      },

      async refundPayment(req, ctx) {
        const { order, replayed } = await createReturn(deps, PaymentKind.PAYMENT_KIND_REFUND, req, ctx);
        return { refund: order, replayed };
      },
      async reversePayment(req, ctx) {
        const { order, replayed } = await createReturn(
          deps,
          PaymentKind.PAYMENT_KIND_REVERSAL,
          { ...req, amount: 0n },
          ctx,
        );
        return { reversal: order, replayed };
      },
    },
    SCOPES,
    verifier,
    log,
  );

  const server = await runtime.serve([binding], [() => saga.stop(), () => (ledger.close(), peers.close())]);
  return { server, router, nats, ledger, saga, log, shutdown: server.shutdown };
}
