import { randomUUID } from 'node:crypto';
import {
  DayCount,
  PostingFrequency,
  ProductKind,
  ScheduleType,
  type CreateProductRequest,
  type DepositTerms,
  type LoanTerms,
} from '@corebank/kit/gen/corebank/v1/product';

export const newProductId = (prefix = 'p') => `${prefix}-${randomUUID().slice(0, 8)}`;

export const depositTerms = (o: Partial<DepositTerms> = {}): DepositTerms => ({
  currency: 'EUR',
  overdraftLimit: 50_000n,
  minimumBalance: 0n,
  perTransactionLimit: 100_000n,
  dailyDebitLimit: 500_000n,
  interestRateBps: 150,
  dayCount: DayCount.DAY_COUNT_ACT_365F,
  postingFrequency: PostingFrequency.POSTING_FREQUENCY_MONTHLY,
  monthlyFee: 490n,
  termMonths: 0,
  ...o,
});

export const loanTerms = (o: Partial<LoanTerms> = {}): LoanTerms => ({
  currency: 'EUR',
  minAmount: 100_000n,
  maxAmount: 5_000_000n,
  minTermMonths: 6,
  maxTermMonths: 84,
  annualRateBps: 690,
  scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_INSTALLMENTS,
  graceDays: 10,
  penaltyRateBps: 500,
  dayCount: DayCount.DAY_COUNT_THIRTY_360,
  annualRate: '',
  graceOnPrincipalPeriods: 0,
  graceOnInterestPeriods: 0,
  graceOnInterestKind: 0,
  instalmentMultiple: 0n,
  delinquencyBuckets: [],
  penaltyRate: '',
  repaymentOrder: [],
  prepaymentStrategy: 0,
  repaymentPeriod: 0,
  partners: [],
  partnerDecline: 0,
  ...o,
});

export function depositProduct(o: Partial<CreateProductRequest> = {}): CreateProductRequest {
  return {
    productId: newProductId('current'),
    kind: ProductKind.PRODUCT_KIND_DEPOSIT,
    name: 'Current account',
    description: 'Everyday account with an arranged overdraft',
    deposit: depositTerms(),
    validity: { kind: { $case: 'calendarDays', value: { days: 30, timeZone: 'Europe/Berlin' } } },
    ...o,
  };
}

export function loanProduct(o: Partial<CreateProductRequest> = {}): CreateProductRequest {
  return {
    productId: newProductId('loan'),
    kind: ProductKind.PRODUCT_KIND_LOAN,
    name: 'Personal loan',
    description: '',
    loan: loanTerms(),
    ...o,
  };
}
