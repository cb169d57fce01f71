// PreviewSchedule: a quote from a published product, no side effects. Amounts worked by hand.
import { status } from '@grpc/grpc-js';
import { DayCount, ScheduleType } from '@corebank/kit/gen/corebank/v1/product';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { loanProduct, loanTerms } from '../../product/test/fixtures.js';
import { loanCounts, publishedDeposit, publishedLoan, startLoans, type TestLoans } from './harness.js';

describe('PreviewSchedule', () => {
  let t: TestLoans;
  beforeAll(async () => {
    t = await startLoans(1);
  });
  afterAll(async () => t?.stop());

  it('quotes an annuity on the latest published version', async () => {
    // 10,000.00 at 12 % over 12 months, 30/360: i = 12/12/100 = 0.01 a month;
    // instalment = P·i/(1-(1+i)^-12) = 1,000,000 × 0.01/(1-1.01^-12) = 88,848.79 -> 88,849.
    // Month 1: interest 1,000,000 × 0.01 = 10,000, principal 88,849 - 10,000 = 78,849.
    const p = await publishedLoan(t, { annualRate: '12', annualRateBps: 0, minAmount: 100_000n });
    const before = await loanCounts(t.app);
    const res = await t.client.previewSchedule({
      productId: p.productId,
      productVersion: 0,
      amount: 1_000_000n,
      termMonths: 12,
      startDate: '2024-01-15',
    });
    expect(res).toMatchObject({ productId: p.productId, productVersion: 1, startDate: '2024-01-15' });
    const s = res.schedule!;
    expect(s).toMatchObject({ currency: 'EUR', annualRate: '12', instalmentAmount: 88_849n });
    expect(s.instalments).toHaveLength(12);
    expect(s.instalments[0]).toMatchObject({
      number: 1,
      fromDate: '2024-01-15',
      dueDate: '2024-02-15',
      principalDue: 78_849n,
      interestDue: 10_000n,
      totalDue: 88_849n,
      outstandingAfter: 921_151n,
    });
    expect(s.instalments[11]!.outstandingAfter).toBe(0n);
    expect(s.totalPrincipal).toBe(1_000_000n);
    expect(s.totalInterest).toBe(66_186n);
    expect(s.totalDue).toBe(1_066_186n);
    expect(s.instalments.reduce((a, i) => a + i.principalDue, 0n)).toBe(1_000_000n);
    expect(await loanCounts(t.app)).toEqual(before);
  });

  it('uses the exact rate, not whole basis points', async () => {
    // Bullet, 12,000.00 at 9.4822 % for 3 months, 30/360: a month's interest is
    // 1,200,000 × 9.4822/100 × 30/360 = 9,482.2 -> 9,482 (half-even). In basis points (948) it
    // would be 9,480. Principal is all due with the last instalment.
    const p = await publishedLoan(t, {
      annualRate: '9.4822',
      annualRateBps: 0,
      scheduleType: ScheduleType.SCHEDULE_TYPE_BULLET,
      dayCount: DayCount.DAY_COUNT_THIRTY_360,
      minTermMonths: 1,
    });
    const { schedule } = await t.client.previewSchedule({
      productId: p.productId,
      productVersion: p.version,
      amount: 1_200_000n,
      termMonths: 3,
      startDate: '2024-03-31',
    });
    expect(schedule!.annualRate).toBe('9.4822');
    expect(schedule!.instalments.map((i) => [i.dueDate, i.principalDue, i.interestDue])).toEqual([
      ['2024-04-30', 0n, 9_482n],
      ['2024-05-31', 0n, 9_482n],
      ['2024-06-30', 1_200_000n, 9_482n],
    ]);
    expect(schedule!.totalInterest).toBe(28_446n);
  });

  it('takes the rate from basis points when the product states only those', async () => {
    // 6.90 % = 690 bp; equal principal, 6,000.00 over 6 months, 30/360: principal 100,000 a month;
    // month 1 interest 600,000 × 0.069/12 = 3,450; month 2: 500,000 × 0.00575 = 2,875.
    const p = await publishedLoan(t, {
      annualRateBps: 690,
      scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL,
    });
    const { schedule, startDate } = await t.client.previewSchedule({
      productId: p.productId,
      productVersion: 0,
      amount: 600_000n,
      termMonths: 6,
      startDate: '',
    });
    expect(startDate).toBe(new Date().toISOString().slice(0, 10));
    expect(schedule!.annualRate).toBe('6.9');
    expect(schedule!.instalments.slice(0, 2).map((i) => [i.principalDue, i.interestDue])).toEqual([
      [100_000n, 3_450n],
      [100_000n, 2_875n],
    ]);
  });

  it('applies the product\u2019s grace on principal and instalment multiple', async () => {
    // Equal principal, 6,000.00 over 6 months at 6.9 % (30/360), the first 2 interest only. The
    // periodic rate, as Fineract computes it (12 significant digits): 6.9/360 = 0.0191666666667,
    // /100 × 30 = 0.00575000000001. Months 1 to 3: 600,000 × that = 3,450.00000001 -> 3,450; then
    // 150,000 of principal a month; month 4: 450,000 -> 2,587.5000000045 -> 2,588; month 5:
    // 300,000 -> 1,725; month 6: 150,000 -> 862.5000000015 -> 863 (not the tie 862.5 -> 862).
    const grace = await publishedLoan(t, {
      annualRate: '6.9',
      annualRateBps: 0,
      scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL,
      graceOnPrincipalPeriods: 2,
    });
    const g = await t.client.previewSchedule({
      productId: grace.productId,
      productVersion: 0,
      amount: 600_000n,
      termMonths: 6,
      startDate: '2024-01-15',
    });
    expect(g.schedule!.instalments.map((i) => [i.principalDue, i.interestDue])).toEqual([
      [0n, 3_450n],
      [0n, 3_450n],
      [150_000n, 3_450n],
      [150_000n, 2_588n],
      [150_000n, 1_725n],
      [150_000n, 863n],
    ]);
    // Annuity in whole euros: 500,000 over 12 months at 6.9 % is 43,240.33 exactly, 43,200 in
    // multiples of 100; the last instalment takes what is left.
    const euros = await publishedLoan(t, { annualRate: '6.9', annualRateBps: 0, instalmentMultiple: 100n });
    const e = await t.client.previewSchedule({
      productId: euros.productId,
      productVersion: 0,
      amount: 500_000n,
      termMonths: 12,
      startDate: '2024-01-15',
    });
    expect(e.schedule!.instalmentAmount).toBe(43_200n);
    expect(e.schedule!.instalments.slice(0, 11).every((i) => i.totalDue === 43_200n)).toBe(true);
    expect(e.schedule!.totalPrincipal).toBe(500_000n);
  });

  it('names each bad field and writes nothing', async () => {
    const p = await publishedLoan(t);
    const before = await loanCounts(t.app);
    const ok = { productId: p.productId, productVersion: 0, amount: 500_000n, termMonths: 12, startDate: '' };
    const cases: [Partial<typeof ok>, string][] = [
      [{ productId: '' }, 'product_id'],
      [{ productId: 'Not An Id' }, 'product_id'],
      [{ productVersion: 2 ** 31 }, 'product_version'],
      [{ amount: 0n }, 'amount'],
      [{ amount: -5n }, 'amount'],
      [{ termMonths: 0 }, 'term_months'],
      [{ termMonths: 601 }, 'term_months'],
      [{ startDate: '2024-02-30' }, 'start_date'],
      [{ startDate: '24-01-01' }, 'start_date'],
      [{ startDate: '1999-12-31' }, 'start_date'],
    ];
    for (const [change, field] of cases) {
      await expectRpcError(t.client.previewSchedule({ ...ok, ...change }), status.INVALID_ARGUMENT, field);
    }
    // Inside the request's bounds but outside the product's ranges.
    await expectRpcError(
      t.client.previewSchedule({ ...ok, amount: 99_999n }),
      status.FAILED_PRECONDITION,
      'amount',
      'OUTSIDE_PRODUCT_RANGE',
    );
    await expectRpcError(
      t.client.previewSchedule({ ...ok, termMonths: 85 }),
      status.FAILED_PRECONDITION,
      'term_months',
      'OUTSIDE_PRODUCT_RANGE',
    );
    expect(await loanCounts(t.app)).toEqual(before);
  });

  it('sells only published loan products', async () => {
    const deposit = await publishedDeposit(t);
    const ask = (productId: string, productVersion = 0) =>
      t.client.previewSchedule({ productId, productVersion, amount: 500_000n, termMonths: 12, startDate: '' });
    await expectRpcError(ask(deposit.productId), status.FAILED_PRECONDITION, 'product_id', 'NOT_A_LOAN_PRODUCT');
    const { product: draft } = await t.peers.catalog.client.createProduct(loanProduct({ loan: loanTerms() }));
    await expectRpcError(
      ask(draft!.productId, 1),
      status.FAILED_PRECONDITION,
      'product_version',
      'PRODUCT_NOT_PUBLISHED',
    );
    await expectRpcError(ask(draft!.productId, 0), status.NOT_FOUND);
    await expectRpcError(ask('no-such-product'), status.NOT_FOUND);
  });

  it('requires loans:read', async () => {
    const p = await publishedLoan(t);
    const c = await t.clientWith(['loans:write']);
    await expectRpcError(
      c.previewSchedule({ productId: p.productId, productVersion: 0, amount: 500_000n, termMonths: 12, startDate: '' }),
      status.PERMISSION_DENIED,
      undefined,
      'MISSING_SCOPE',
    );
  });
});
