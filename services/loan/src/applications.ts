// Applications: the checks an application must pass before anything is written, the facts the
// scorecard scores, the decision stored with its reasons, and a reviewer's decision on a referral.
import { createHash } from 'node:crypto';
import { bucketedId, bucketOf, DomainError, type RpcContext, type ShardRouter, divRoundHalfEven } from '@corebank/kit';
import type { Account } from '@corebank/kit/gen/corebank/v1/account';
import { CustomerStatus, KycStatus, RiskTier, type Customer } from '@corebank/kit/gen/corebank/v1/customer';
import {
  ApplicationState as A,
  type ApplyForLoanRequest,
  type ApplyForLoanResponse,
  type DecideLoanApplicationRequest,
  type Loan,
  type LoanApplication,
} from '@corebank/kit/gen/corebank/v1/loan';
import type { LoanTerms, ProductVersion } from '@corebank/kit/gen/corebank/v1/product';
import type { Accounts } from './clients/accounts.js';
import type { Customers } from './clients/customers.js';
import type { Products } from './clients/products.js';
import { applied, decided } from './events.js';
import { applicationToProto, type ApplicationRow } from './proto.js';
import { score, type Outcome, type Scorecard, type Tier } from './scorecard.js';
import { disburseInCall, loanIdFor, newLoan, type LoanDeps } from './loans.js';
import {
  exposureOf,
  findApplication,
  findApplicationByKey,
  insertApplication,
  insertLoan,
  updateApplication,
} from './store.js';
import { annualRateOf, checkRanges, formatRate, loanTermsOf, periodOf, scheduleFor } from './terms.js';
import { partnerSieve } from './partners.js';
import { applications, decisionSeconds, reviews } from './metrics.js';

/** What an instalment costs a month: a weekly one times 52 / 12, rounded half-even (the scorecard compares it with monthly income). */
function monthlyEquivalent(terms: LoanTerms, instalment: bigint): bigint {
  return periodOf(terms) === 'weekly' ? divRoundHalfEven(instalment * 52n, 12n) : instalment;
}

export interface Deps extends LoanDeps {
  router: ShardRouter;
  accounts: Accounts;
  customers: Customers;
  products: Products;
  scorecard: Scorecard;
  saleable: (p: ProductVersion) => ProductVersion;
  /** The bank's business date as this process last read it: the day an offer's schedule starts on. */
  businessDate: () => string;
}

const STATE: Record<Outcome, A> = {
  APPROVED: A.APPLICATION_STATE_APPROVED,
  REFERRED: A.APPLICATION_STATE_REFERRED,
  REJECTED: A.APPLICATION_STATE_REJECTED,
};

const TIERS: Partial<Record<RiskTier, Tier>> = {
  [RiskTier.RISK_TIER_LOW]: 'LOW',
  [RiskTier.RISK_TIER_MEDIUM]: 'MEDIUM',
  [RiskTier.RISK_TIER_HIGH]: 'HIGH',
};

/** The application id: derived from the customer and the key (a retry finds the same row); it carries the customer's bucket. */
export const applicationIdFor = (customerId: string, key: string): string =>
  bucketedId(bucketOf(customerId), 'loan-application', customerId, key);

function bodyHash(req: ApplyForLoanRequest, ids: { disbursement: string; repayment: string }): string {
  const body = [
    req.productId,
    req.productVersion,
    String(req.amount),
    req.termMonths,
    ids.disbursement,
    ids.repayment,
    String(req.declaredMonthlyIncome),
  ];
  return createHash('sha256').update(JSON.stringify(body)).digest('base64url');
}

/** Whether the caller may see a customer's things: any unbound token, or one bound to that customer. */
export const bound = (ctx: RpcContext, customerId: string): boolean =>
  ctx.principal.customerId === undefined || ctx.principal.customerId === customerId;

const precondition = (reason: string, field: string, description: string) =>
  new DomainError('FAILED_PRECONDITION', reason, `${field}: ${description}`, [{ field, description }]);

/** One of the two accounts: the customer's own, open, a deposit account, in the loan's currency. */
function checkAccount(field: string, a: Account | undefined, customerId: string, currency: string): Account {
  if (!a) throw DomainError.notFound(field, 'account');
  if (a.ownerId !== customerId) throw precondition('ACCOUNT_NOT_OWNED', field, "is not the customer's account");
  if (!a.productId) throw precondition('NOT_A_DEPOSIT_ACCOUNT', field, 'is not a deposit account');
  if (a.closed) throw precondition('ACCOUNT_CLOSED', field, 'is closed');
  if (a.currency !== currency) throw precondition('CURRENCY_MISMATCH', field, `is not in ${currency}`);
  return a;
}

async function replay(
  d: Deps,
  row: ApplicationRow,
  hash: string,
  shard: number,
  ctx: RpcContext,
): Promise<ApplyForLoanResponse> {
  if (row.body_hash !== hash) {
    throw new DomainError(
      'ALREADY_EXISTS',
      'APPLICATION_EXISTS_WITH_DIFFERENT_BODY',
      'idempotency_key: this customer applied with this key and a different body',
      [{ field: 'idempotency_key', description: 'was used before with a different body' }],
      { application_id: row.id },
    );
  }
  // An approved application's loan: its disbursement is finished here if a crash or an outage left it.
  const loan = row.loan_id ? await disburseInCall(d, row.loan_id, ctx.deadline) : undefined;
  return { application: applicationToProto(row, shard), replayed: true, ...(loan ? { loan } : {}) };
}

/** The value of a settled promise, or its error thrown. */
function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/** The customer must (still) be ACTIVE and KYC-verified. */
async function requireEligible(d: Deps, customerId: string, ctx: RpcContext) {
  return eligible(await d.customers.get(customerId, ctx.deadline));
}

function eligible(customer: Customer): Customer {
  if (customer.status !== CustomerStatus.CUSTOMER_STATUS_ACTIVE) {
    throw precondition('CUSTOMER_NOT_ACTIVE', 'customer_id', 'the customer is not active');
  }
  if (customer.kycStatus !== KycStatus.KYC_STATUS_VERIFIED) {
    throw precondition('KYC_NOT_VERIFIED', 'customer_id', "the customer's KYC is not verified");
  }
  return customer;
}

export async function applyForLoan(
  d: Deps,
  req: ApplyForLoanRequest,
  ids: { customerId: string; disbursement: string; repayment: string },
  ctx: RpcContext,
): Promise<ApplyForLoanResponse> {
  const { customerId } = ids;
  const decisionTimer = decisionSeconds.startTimer();
  const shard = d.router.byCustomer(customerId);
  const hash = bodyHash(req, ids);
  const seen = await findApplicationByKey(shard.db, customerId, req.idempotencyKey);
  if (seen) return replay(d, seen, hash, shard.index, ctx);

  // Everything an application must satisfy, before anything is written. The peers are asked at
  // once; their answers are judged in the documented order (product, customer, accounts).
  const [productAsked, customerAsked, ownedAsked, exposureAsked] = await Promise.allSettled([
    d.products.get(req.productId, req.productVersion, ctx.deadline),
    d.customers.get(customerId, ctx.deadline),
    d.accounts.ofOwner(customerId, ctx.deadline),
    exposureOf(shard.db, customerId),
  ]);
  const product = d.saleable(settled(productAsked));
  const terms = loanTermsOf(product);
  checkRanges(terms, req.amount, req.termMonths);
  const customer = eligible(settled(customerAsked));
  const owned = settled(ownedAsked);
  // The customer's own accounts are in the list; any other id is asked for (NOT_FOUND or not owned).
  const account = async (id: string) => owned.find((a) => a.id === id) ?? (await d.accounts.get(id, ctx.deadline));
  const [disbursement, repayment] = await Promise.all([account(ids.disbursement), account(ids.repayment)]);
  const payInto = checkAccount('disbursement_account_id', disbursement, customerId, terms.currency);
  checkAccount('repayment_account_id', repayment, customerId, terms.currency);

  // The facts the scorecard scores.
  const rate = annualRateOf(terms);
  const schedule = scheduleFor(terms, req.amount, req.termMonths, d.businessDate(), rate);
  const exposure = settled(exposureAsked);
  const opened = payInto.createdAt ? Number(payInto.createdAt.seconds) * 1000 : Date.now();
  const decision = score(d.scorecard, {
    riskTier: TIERS[customer.riskTier] ?? 'HIGH',
    exposure,
    accountAgeDays: Math.max(0, Math.floor((Date.now() - opened) / 86_400_000)),
    turnover: owned.filter((a) => a.productId).reduce((s, a) => s + a.creditsPosted, 0n),
    amount: req.amount,
    instalment: monthlyEquivalent(
      terms,
      schedule.periods.reduce((m, p) => (p.totalDue > m ? p.totalDue : m), 0n),
    ),
    monthlyIncome: req.declaredMonthlyIncome,
  });

  // The second sieve: each partner lender's own rules (co-lent products only).
  const sieve = await partnerSieve(d.router, terms, decision, {
    score: decision.score,
    amount: req.amount,
    termMonths: req.termMonths,
    riskTier: customer.riskTier,
    shard: shard.index,
    currency: terms.currency,
  });

  const now = new Date();
  const state = STATE[sieve.outcome];
  const approved = state === A.APPLICATION_STATE_APPROVED;
  const id = applicationIdFor(customerId, req.idempotencyKey);
  const row: ApplicationRow = {
    id,
    customer_id: customerId,
    channel: ctx.principal.channel,
    idempotency_key: req.idempotencyKey,
    body_hash: hash,
    product_id: product.productId,
    product_version: product.version,
    currency: terms.currency,
    amount: req.amount,
    term_months: req.termMonths,
    disbursement_account_id: ids.disbursement,
    repayment_account_id: ids.repayment,
    monthly_income: req.declaredMonthlyIncome,
    state,
    score: decision.score,
    reasons: sieve.reasons,
    partner_decisions: sieve.decisions,
    approved_amount: approved ? req.amount : 0n,
    annual_rate: formatRate(rate),
    loan_id: approved ? loanIdFor(id) : null,
    decided_by: 'scorecard',
    decision_note: '',
    created_at: now,
    decided_at: state === A.APPLICATION_STATE_REFERRED ? null : now,
  };
  const loan = approved ? newLoan(row, now) : undefined;
  const res = await insertApplication(shard, row, loan, (a) => applied(a, now));
  if (!res.inserted) return replay(d, res.row, hash, shard.index, ctx); // a concurrent request with the same key won
  decisionTimer();
  applications.inc({ decision: sieve.outcome.toLowerCase() });
  ctx.log.info({ application_id: row.id, state: A[state], score: decision.score }, 'loan application decided');
  const disbursed = loan ? await disburseInCall(d, loan.id, ctx.deadline) : undefined;
  return {
    application: applicationToProto(res.row, shard.index),
    replayed: false,
    ...(disbursed ? { loan: disbursed } : {}),
  };
}

/** A reviewer's decision on a referred application; the same decision again changes nothing. */
export async function decideApplication(
  d: Deps,
  id: string,
  req: DecideLoanApplicationRequest,
  ctx: RpcContext,
): Promise<{ application: LoanApplication; changed: boolean; loan?: Loan }> {
  const shard = d.router.byId(id)!;
  const approve = req.decision === A.APPLICATION_STATE_APPROVED;
  // The product's range bounds a lower approved amount: read it before locking the row.
  const current = await findApplication(shard.db, id);
  if (!current || !bound(ctx, current.customer_id)) throw DomainError.notFound('application_id', 'application');
  let minAmount = 0n;
  if (approve && current.state === A.APPLICATION_STATE_REFERRED) await requireEligible(d, current.customer_id, ctx);
  if (approve && req.approvedAmount > 0n) {
    const p = await d.products.get(current.product_id, current.product_version, ctx.deadline);
    minAmount = loanTermsOf(p).minAmount;
  }
  const res = await updateApplication(shard, id, async (row, tx) => {
    if (row.state === req.decision) return undefined;
    if (row.state !== A.APPLICATION_STATE_REFERRED) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'APPLICATION_ALREADY_DECIDED',
        `application_id: the application is ${A[row.state]}`,
        [],
        { state: A[row.state] },
      );
    }
    const amount = approve ? (req.approvedAmount > 0n ? req.approvedAmount : row.amount) : 0n;
    if (approve && (amount > row.amount || amount < minAmount)) {
      throw new DomainError(
        'INVALID_ARGUMENT',
        'INVALID_ARGUMENT',
        `approved_amount: must be ${minAmount} to ${row.amount}`,
        [{ field: 'approved_amount', description: `must be ${minAmount} to the amount applied for` }],
      );
    }
    const now = new Date();
    const loanId = approve ? loanIdFor(row.id) : null;
    if (approve) await insertLoan(tx, newLoan({ ...row, approved_amount: amount }, now));
    return {
      set: {
        state: req.decision,
        approved_amount: amount,
        loan_id: loanId,
        decided_by: ctx.principal.channel,
        decision_note: req.note,
        decided_at: now,
        reasons: [
          ...row.reasons,
          { code: approve ? 'REVIEWER_APPROVED' : 'REVIEWER_REJECTED', points: 0, detail: req.note },
        ],
      },
      events: (a, at) => [decided(a, at)],
    };
  });
  ctx.log.info({ application_id: id, decision: A[req.decision], changed: res.changed }, 'loan application reviewed');
  if (res.changed) reviews.inc({ decision: approve ? 'approved' : 'rejected' });
  const loanId = res.row!.loan_id;
  const loan = loanId ? await disburseInCall(d, loanId, ctx.deadline) : undefined;
  return { application: applicationToProto(res.row!, shard.index), changed: res.changed, ...(loan ? { loan } : {}) };
}
