// Request validation: every bad field is named, all at once, before anything is read or written.
import { bucketOfId, enumValue, int64, text, uint32, uuid, Violations } from '@corebank/kit';
import {
  ApplicationState,
  type ApplyForLoanRequest,
  type DecideLoanApplicationRequest,
  type PreviewScheduleRequest,
  type RunLoanDayRequest,
  type WriteOffLoanRequest,
} from '@corebank/kit/gen/corebank/v1/loan';

const PRODUCT_ID = /^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** Longest term a request may name (the catalog allows at most 600 months). */
export const MAX_TERM_MONTHS = 600;

export function productField(v: Violations, id: string, version: number): void {
  text(v, 'product_id', id, { max: 64, required: true, pattern: PRODUCT_ID, shape: 'a product id' });
  uint32(v, 'product_version', version);
}

export function amountField(v: Violations, field: string, amount: bigint): void {
  int64(v, field, amount, { min: 1n });
}

export function termField(v: Violations, term: number): void {
  uint32(v, 'term_months', term, { min: 1, max: MAX_TERM_MONTHS });
}

/** A calendar date YYYY-MM-DD from 2000-01-01 to 2199-12-31; empty when not required. */
export function dateField(v: Violations, field: string, value: string, required = false): void {
  if (!value) {
    if (required) v.add(field, 'is required');
    return;
  }
  const m = value.length === 10 ? DATE.exec(value) : null;
  if (!m) return v.add(field, 'must be a date YYYY-MM-DD');
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const back = new Date(Date.UTC(y, mo - 1, d));
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    return v.add(field, 'is not a calendar date');
  }
  if (y < 2000 || y > 2199) v.add(field, 'must be 2000-01-01 to 2199-12-31');
}

export function validatePreview(req: PreviewScheduleRequest): void {
  const v = new Violations();
  productField(v, req.productId, req.productVersion);
  amountField(v, 'amount', req.amount);
  termField(v, req.termMonths);
  dateField(v, 'start_date', req.startDate);
  v.throwIfAny();
}

/** An id this service or the ledger issued: a UUID whose last four hex digits are a bucket. */
export function bucketedIdField(v: Violations, field: string, value: string, what: string): string | undefined {
  const id = uuid(v, field, value, { what });
  if (id !== undefined && bucketOfId(id) === undefined) {
    v.add(field, `is not ${what}`);
    return undefined;
  }
  return id;
}

export function customerIdField(v: Violations, value: string, required = true): string | undefined {
  return uuid(v, 'customer_id', value, { what: 'a customer id', required });
}

export function idempotencyKeyField(v: Violations, value: string): void {
  text(v, 'idempotency_key', value, { max: 128, required: true });
}

/** Checks an application; returns the lower-case ids. */
export function validateApply(req: ApplyForLoanRequest) {
  const v = new Violations();
  idempotencyKeyField(v, req.idempotencyKey);
  const customerId = customerIdField(v, req.customerId);
  productField(v, req.productId, req.productVersion);
  amountField(v, 'amount', req.amount);
  termField(v, req.termMonths);
  const disbursement = bucketedIdField(v, 'disbursement_account_id', req.disbursementAccountId, 'an account id');
  const repayment = bucketedIdField(v, 'repayment_account_id', req.repaymentAccountId, 'an account id');
  int64(v, 'declared_monthly_income', req.declaredMonthlyIncome, { min: 0n });
  v.throwIfAny();
  return { customerId: customerId!, disbursement: disbursement!, repayment: repayment! };
}

export function validateDecide(req: DecideLoanApplicationRequest): string {
  const v = new Violations();
  const id = bucketedIdField(v, 'application_id', req.applicationId, 'an application id');
  enumValue(v, 'decision', req.decision, ApplicationState, {
    allowed: [ApplicationState.APPLICATION_STATE_APPROVED, ApplicationState.APPLICATION_STATE_REJECTED],
  });
  text(v, 'note', req.note, {
    max: 500,
    multiline: true,
    required: req.decision === ApplicationState.APPLICATION_STATE_REJECTED,
  });
  int64(v, 'approved_amount', req.approvedAmount, { min: 0n });
  if (req.approvedAmount > 0n && req.decision !== ApplicationState.APPLICATION_STATE_APPROVED) {
    v.add('approved_amount', 'is only for an approval');
  }
  v.throwIfAny();
  return id!;
}

/** Most loans one RunLoanDay may name. */
export const MAX_DAY_LOAN_IDS = 1000;

/** Checks a RunLoanDay request; returns the lower-case ids (undefined: the range). */
export function validateRunLoanDay(req: RunLoanDayRequest, shardCount: number) {
  const v = new Violations();
  dateField(v, 'business_date', req.businessDate, true);
  uint32(v, 'shard', req.shard, { max: shardCount - 1 });
  const after = req.afterId ? uuid(v, 'after_id', req.afterId, { what: 'a loan id' }) : '';
  const upTo = req.upToId ? uuid(v, 'up_to_id', req.upToId, { what: 'a loan id' }) : '';
  let ids: string[] | undefined;
  if (req.loanIds.length > MAX_DAY_LOAN_IDS) {
    v.add('loan_ids', `must name at most ${MAX_DAY_LOAN_IDS} loans`);
  } else if (req.loanIds.length) {
    if (req.afterId || req.upToId) v.add('loan_ids', 'is not with after_id or up_to_id');
    ids = req.loanIds.map((id, i) => bucketedIdField(v, `loan_ids[${i}]`, id, 'a loan id') ?? '');
  }
  v.throwIfAny();
  return { after: after ?? '', upTo: upTo ?? '', ids: ids && [...new Set(ids)] };
}

export function validateWriteOff(req: WriteOffLoanRequest): string {
  const v = new Violations();
  const id = bucketedIdField(v, 'loan_id', req.loanId, 'a loan id');
  idempotencyKeyField(v, req.idempotencyKey);
  text(v, 'reason', req.reason, { max: 500, multiline: true, required: true });
  v.throwIfAny();
  return id!;
}
