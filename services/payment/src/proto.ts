// Payment rows as the payments table holds them, and their wire message.
import { toTimestamp } from '@corebank/kit';
import type {
  PaymentKind as K,
  PaymentStatus as S,
  PaymentStep as P,
  Payment,
  PaymentRoute,
  RiskFinding,
} from '@corebank/kit/gen/corebank/v1/payment';

export interface PaymentRow {
  seq: bigint;
  id: string;
  channel: string;
  idempotency_key: string;
  body_hash: string;
  kind: K;
  original_payment_id: string | null;
  payer_account_id: string;
  payee_account_id: string;
  payer_customer_id: string;
  amount: bigint;
  refunded_amount: bigint;
  currency: string;
  reference: string;
  status: S;
  route: PaymentRoute;
  step: P;
  reason: string;
  note: string;
  attempts: number;
  next_attempt_at: Date;
  auto_release_at: Date | null;
  risk_findings: RiskFinding[];
  limit_day: string | null;
  review_decision: string;
  escrow_outcome: string;
  payer_shard: number;
  payee_shard: number;
  created_at: Date;
  updated_at: Date;
  settled_at: Date | null;
}

export function paymentToProto(r: PaymentRow): Payment {
  return {
    id: r.id,
    channel: r.channel,
    idempotencyKey: r.idempotency_key,
    payerAccountId: r.payer_account_id,
    payeeAccountId: r.payee_account_id,
    payerCustomerId: r.payer_customer_id,
    amount: r.amount,
    currency: r.currency,
    reference: r.reference,
    status: r.status,
    route: r.route,
    step: r.step,
    reason: r.reason,
    attempts: r.attempts,
    payerShard: r.payer_shard,
    payeeShard: r.payee_shard,
    createdAt: toTimestamp(r.created_at),
    updatedAt: toTimestamp(r.updated_at),
    ...(r.settled_at ? { settledAt: toTimestamp(r.settled_at) } : {}),
    kind: r.kind,
    originalPaymentId: r.original_payment_id ?? '',
    ...(r.auto_release_at ? { autoReleaseAt: toTimestamp(r.auto_release_at) } : {}),
    refundedAmount: r.refunded_amount,
    // jsonb holds the enums as numbers, as written.
    riskFindings: r.risk_findings,
    note: r.note,
  };
}
