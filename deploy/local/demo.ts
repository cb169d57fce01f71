// Demo data for `npm run up`: a small product catalog (published) and three onboarded,
// KYC-verified customers. Every call is idempotent (products by id, customers by the demo
// channel's external reference, KYC by target state), so seeding twice changes nothing.
//
// The launcher calls it with clients whose token carries DEMO_SCOPES, then opens accounts for the
// returned customer ids on the returned products (AccountService.OpenDepositAccount).
import type { CustomerServiceClient, Customer } from '@corebank/kit/gen/corebank/v1/customer';
import { CustomerKind, KycStatus } from '@corebank/kit/gen/corebank/v1/customer';
import type { CreateProductRequest, ProductServiceClient, ProductVersion } from '@corebank/kit/gen/corebank/v1/product';
import { DayCount, PostingFrequency, ProductKind, ScheduleType } from '@corebank/kit/gen/corebank/v1/product';
import type { Promisified } from '@corebank/kit';

/** What a seeding token needs, besides the account scopes. */
export const DEMO_SCOPES = ['customers:read', 'customers:write', 'customers:admin', 'products:read', 'products:write'];

export interface DemoClients {
  customers: Promisified<CustomerServiceClient>;
  products: Promisified<ProductServiceClient>;
}

export interface Demo {
  products: { current: ProductVersion; savings: ProductVersion; loan: ProductVersion };
  customers: { alice: Customer; bob: Customer; carol: Customer };
}

export const DEMO_PRODUCTS: Record<keyof Demo['products'], CreateProductRequest> = {
  current: {
    productId: 'current-eur',
    kind: ProductKind.PRODUCT_KIND_DEPOSIT,
    name: 'Current account (EUR)',
    description: 'Everyday account with a EUR 500.00 arranged overdraft and a monthly fee of EUR 4.90',
    deposit: {
      currency: 'EUR',
      overdraftLimit: 50_000n,
      minimumBalance: 0n,
      perTransactionLimit: 0n,
      dailyDebitLimit: 1_000_000n,
      interestRateBps: 0,
      dayCount: DayCount.DAY_COUNT_ACT_365F,
      postingFrequency: PostingFrequency.POSTING_FREQUENCY_MONTHLY,
      monthlyFee: 490n,
      termMonths: 0,
    },
  },
  savings: {
    productId: 'savings-eur',
    kind: ProductKind.PRODUCT_KIND_DEPOSIT,
    name: 'Instant savings (EUR)',
    description: '2.50% a year, posted quarterly; a 30-day bonus rate window counted in Berlin calendar days',
    deposit: {
      currency: 'EUR',
      overdraftLimit: 0n,
      minimumBalance: 100n,
      perTransactionLimit: 0n,
      dailyDebitLimit: 0n,
      interestRateBps: 250,
      dayCount: DayCount.DAY_COUNT_ACT_365F,
      postingFrequency: PostingFrequency.POSTING_FREQUENCY_QUARTERLY,
      monthlyFee: 0n,
      termMonths: 0,
    },
    validity: { kind: { $case: 'calendarDays', value: { days: 30, timeZone: 'Europe/Berlin' } } },
  },
  loan: {
    productId: 'personal-loan-eur',
    kind: ProductKind.PRODUCT_KIND_LOAN,
    name: 'Personal loan (EUR)',
    description: 'EUR 1,000 to 50,000 over 6 to 84 months at 6.90%',
    loan: {
      currency: 'EUR',
      minAmount: 100_000n,
      maxAmount: 5_000_000n,
      minTermMonths: 6,
      maxTermMonths: 84,
      annualRateBps: 0,
      annualRate: '6.9',
      graceOnPrincipalPeriods: 0,
      graceOnInterestPeriods: 0,
      graceOnInterestKind: 0,
      instalmentMultiple: 0n,
      repaymentOrder: [],
      prepaymentStrategy: 0,
      repaymentPeriod: 0,
      partners: [],
      partnerDecline: 0,
      scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_INSTALLMENTS,
      graceDays: 10,
      penaltyRateBps: 500,
      dayCount: DayCount.DAY_COUNT_THIRTY_360,
      delinquencyBuckets: [1, 31, 61, 91],
      penaltyRate: '',
    },
  },
};

const address = { lines: ['Unter den Linden 1'], city: 'Berlin', postalCode: '10117', region: '', country: 'DE' };

export async function seedDemo(c: DemoClients): Promise<Demo> {
  const products = {} as Demo['products'];
  for (const [key, req] of Object.entries(DEMO_PRODUCTS) as [keyof Demo['products'], CreateProductRequest][]) {
    await c.products.createProduct(req);
    products[key] = (await c.products.publishProductVersion({ productId: req.productId, version: 1 })).product!;
  }

  const people = [
    ['alice', 'Alice', 'Liddell', '1990-05-04', 'DE', '86095742719', 'alice@example.org', '+4930123450'],
    ['bob', 'Bob', 'Builder', '1985-11-23', 'ES', '12345678Z', 'bob@example.org', '+34911234567'],
  ] as const;
  const customers = {} as Demo['customers'];
  for (const [key, givenName, familyName, dateOfBirth, country, nationalId, email, phone] of people) {
    const { customer } = await c.customers.createCustomer({
      externalReference: `demo-${key}`,
      kind: CustomerKind.CUSTOMER_KIND_PERSON,
      person: { givenName, familyName, dateOfBirth, nationalIdCountry: country, nationalId, nationalIdLast4: '' },
      contact: { email, phone, address },
    });
    customers[key] = customer!;
  }
  const { customer: carol } = await c.customers.createCustomer({
    externalReference: 'demo-carol',
    kind: CustomerKind.CUSTOMER_KIND_BUSINESS,
    business: {
      legalName: 'Carol Analytics Ltd',
      registrationCountry: 'GB',
      registrationNumber: 'SC123456',
      registrationNumberLast4: '',
    },
    contact: { email: 'office@carol.example', phone: '+441312345678', address: undefined },
  });
  customers.carol = carol!;

  // KYC: submitted, then verified, so that accounts can be opened for them.
  for (const key of Object.keys(customers) as (keyof Demo['customers'])[]) {
    const { id, kycStatus } = customers[key];
    if (kycStatus === KycStatus.KYC_STATUS_VERIFIED) continue;
    if (kycStatus !== KycStatus.KYC_STATUS_SUBMITTED) await c.customers.submitKyc({ customerId: id });
    customers[key] = (
      await c.customers.decideKyc({ customerId: id, decision: KycStatus.KYC_STATUS_VERIFIED, reason: 'demo data' })
    ).customer!;
  }
  return { products, customers };
}
