// The product catalog: versions from DRAFT to PUBLISHED to RETIRED, immutability once published,
// new versions copying the latest, validation of every parameter, and an event for each change.
import {
  DayCount,
  PostingFrequency,
  ProductKind,
  ProductStatus as P,
  ScheduleType,
  type GraceOnInterestKind,
  type UpdateProductVersionRequest,
} from '@corebank/kit/gen/corebank/v1/product';
import { fromTimestamp, toTimestamp } from '@corebank/kit';
import { ProductVersionChanged } from '@corebank/kit/gen/corebank/v1/events';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import { depositProduct, depositTerms, loanProduct, loanTerms, newProductId } from './fixtures.js';
import { catalogCounts, productEvents, startCatalog, type TestCatalog } from './harness.js';

describe('product catalog', () => {
  let t: TestCatalog;
  beforeAll(async () => {
    t = await startCatalog();
  });
  afterAll(async () => t?.stop());

  const update = (productId: string, version: number, o: Partial<UpdateProductVersionRequest> = {}) =>
    t.client.updateProductVersion({
      productId,
      version,
      name: 'Current account',
      description: 'Everyday account with an arranged overdraft',
      deposit: depositTerms(),
      validity: { kind: { $case: 'calendarDays', value: { days: 30, timeZone: 'Europe/Berlin' } } },
      ...o,
    });
  const publish = (productId: string, version: number) => t.client.publishProductVersion({ productId, version });
  const retire = (productId: string, version: number) => t.client.retireProductVersion({ productId, version });
  const get = async (productId: string, version = 0) => (await t.client.getProduct({ productId, version })).product!;

  it('creates a product as version 1 DRAFT, idempotently by product_id', async () => {
    const req = depositProduct();
    const res = await t.client.createProduct(req);
    expect(res.replayed).toBe(false);
    expect(res.product).toMatchObject({
      productId: req.productId,
      version: 1,
      status: P.PRODUCT_STATUS_DRAFT,
      kind: ProductKind.PRODUCT_KIND_DEPOSIT,
      name: req.name,
      deposit: req.deposit,
      validity: req.validity,
    });
    expect(res.product!.publishedAt).toBeUndefined();
    const again = await t.client.createProduct(req);
    expect(again).toEqual({ ...res, replayed: true });
    const before = await catalogCounts(t.app);
    await expectRpcError(
      t.client.createProduct({ ...req, name: 'Another name' }),
      status.ALREADY_EXISTS,
      'product_id',
      'PRODUCT_EXISTS_WITH_DIFFERENT_BODY',
    );
    expect(await catalogCounts(t.app)).toEqual(before);
    expect((await productEvents(t.app, req.productId)).map((e) => e.subject)).toEqual([SUBJECTS.productCreated]);
  });

  it('edits a draft, publishes it, then refuses every change to it', async () => {
    const req = depositProduct();
    await t.client.createProduct(req);
    await expectRpcError(get(req.productId), status.NOT_FOUND, 'version', 'PRODUCT_NOT_PUBLISHED');

    const edited = await update(req.productId, 1, { deposit: depositTerms({ interestRateBps: 175 }) });
    expect(edited.changed).toBe(true);
    expect(edited.product!.deposit!.interestRateBps).toBe(175);
    const same = await update(req.productId, 1, { deposit: depositTerms({ interestRateBps: 175 }) });
    expect(same.changed).toBe(false);

    const published = await publish(req.productId, 1);
    expect(published.changed).toBe(true);
    expect(published.product!.status).toBe(P.PRODUCT_STATUS_PUBLISHED);
    expect(published.product!.publishedAt).toBeDefined();
    expect((await publish(req.productId, 1)).changed).toBe(false);
    expect(await get(req.productId)).toEqual(published.product);

    const before = await catalogCounts(t.app);
    for (const change of [
      { deposit: depositTerms({ interestRateBps: 200 }) },
      { name: 'Renamed' },
      { deposit: depositTerms({ interestRateBps: 175 }) }, // even the same content: published is final
    ]) {
      const err = await expectRpcError(
        update(req.productId, 1, change),
        status.FAILED_PRECONDITION,
        undefined,
        'PRODUCT_VERSION_IMMUTABLE',
      );
      expect(err.details).toContain('PUBLISHED');
    }
    expect(await catalogCounts(t.app)).toEqual(before);
    expect(await get(req.productId, 1)).toEqual(published.product);
    expect((await productEvents(t.app, req.productId)).map((e) => e.subject)).toEqual([
      SUBJECTS.productCreated,
      SUBJECTS.versionUpdated,
      SUBJECTS.versionPublished,
    ]);
  });

  it('starts a new version as a DRAFT copy of the latest; older versions stay as they were', async () => {
    const req = depositProduct();
    await t.client.createProduct(req);
    const v1 = (await publish(req.productId, 1)).product!;

    const v2 = await t.client.createProductVersion({ productId: req.productId });
    expect(v2.changed).toBe(true);
    expect(v2.product).toMatchObject({
      version: 2,
      status: P.PRODUCT_STATUS_DRAFT,
      name: v1.name,
      description: v1.description,
      deposit: v1.deposit,
      validity: v1.validity,
    });
    // One open draft at a time: asking again returns it.
    const again = await t.client.createProductVersion({ productId: req.productId });
    expect(again).toEqual({ product: v2.product, changed: false });

    await update(req.productId, 2, { deposit: depositTerms({ interestRateBps: 300, monthlyFee: 0n }) });
    expect(await get(req.productId)).toEqual(v1); // latest published is still v1
    const p2 = (await publish(req.productId, 2)).product!;
    expect(await get(req.productId)).toEqual(p2);
    expect((await get(req.productId, 1)).deposit!.interestRateBps).toBe(150);
    expect((await get(req.productId, 2)).deposit).toMatchObject({ interestRateBps: 300, monthlyFee: 0n });

    const listed = await t.client.listProductVersions({ productId: req.productId });
    expect(listed.versions.map((v) => [v.version, v.status])).toEqual([
      [2, P.PRODUCT_STATUS_PUBLISHED],
      [1, P.PRODUCT_STATUS_PUBLISHED],
    ]);
    const v3 = await t.client.createProductVersion({ productId: req.productId });
    expect(v3.product).toMatchObject({ version: 3, deposit: p2.deposit });
  });

  it('retires a published version: DRAFT -> PUBLISHED -> RETIRED only', async () => {
    const req = loanProduct();
    await t.client.createProduct(req);
    await expectRpcError(retire(req.productId, 1), status.FAILED_PRECONDITION, undefined, 'ILLEGAL_PRODUCT_TRANSITION');
    await publish(req.productId, 1);
    const retired = await retire(req.productId, 1);
    expect(retired.changed).toBe(true);
    expect(retired.product).toMatchObject({ status: P.PRODUCT_STATUS_RETIRED });
    expect(retired.product!.retiredAt).toBeDefined();
    expect((await retire(req.productId, 1)).changed).toBe(false);
    const err = await expectRpcError(
      publish(req.productId, 1),
      status.FAILED_PRECONDITION,
      undefined,
      'ILLEGAL_PRODUCT_TRANSITION',
    );
    expect(err.details).toContain('from RETIRED to PUBLISHED');
    await expectRpcError(
      t.client.updateProductVersion({ ...req, version: 1 }),
      status.FAILED_PRECONDITION,
      undefined,
      'PRODUCT_VERSION_IMMUTABLE',
    );
    // No published version left: "latest" finds none, but the retired version is still readable.
    await expectRpcError(get(req.productId), status.NOT_FOUND, 'version', 'PRODUCT_NOT_PUBLISHED');
    expect((await get(req.productId, 1)).status).toBe(P.PRODUCT_STATUS_RETIRED);
    expect((await productEvents(t.app, req.productId)).map((e) => [e.subject, e.product.status])).toEqual([
      [SUBJECTS.productCreated, P.PRODUCT_STATUS_DRAFT],
      [SUBJECTS.versionPublished, P.PRODUCT_STATUS_PUBLISHED],
      [SUBJECTS.versionRetired, P.PRODUCT_STATUS_RETIRED],
    ]);
  });

  it('says which product or version is missing', async () => {
    await expectRpcError(get('no-such-product'), status.NOT_FOUND, 'product_id');
    const req = depositProduct();
    await t.client.createProduct(req);
    await expectRpcError(get(req.productId, 9), status.NOT_FOUND, 'version');
    await expectRpcError(publish(req.productId, 9), status.NOT_FOUND, 'version');
    await expectRpcError(publish(req.productId, 0), status.INVALID_ARGUMENT, 'version');
    await expectRpcError(t.client.createProductVersion({ productId: 'nope-x' }), status.NOT_FOUND, 'product_id');
    await expectRpcError(get('Bad_Id'), status.INVALID_ARGUMENT, 'product_id');
  });

  const invalid: [string, () => Parameters<TestCatalog['client']['createProduct']>[0], string][] = [
    ['product_id', () => depositProduct({ productId: '' }), 'is required'],
    ['product_id', () => depositProduct({ productId: 'Current EUR' }), 'lower-case'],
    ['kind', () => depositProduct({ kind: ProductKind.PRODUCT_KIND_UNSPECIFIED }), 'PRODUCT_KIND_DEPOSIT'],
    ['name', () => depositProduct({ name: ' ' }), 'is required'],
    ['description', () => depositProduct({ description: 'x'.repeat(2001) }), 'at most 2000'],
    ['deposit', () => depositProduct({ deposit: undefined }), 'is required for a DEPOSIT'],
    ['loan', () => depositProduct({ loan: loanTerms() }), 'must not be set for a DEPOSIT'],
    ['deposit.currency', () => depositProduct({ deposit: depositTerms({ currency: 'EURO' }) }), 'ISO 4217'],
    ['deposit.currency', () => depositProduct({ deposit: depositTerms({ currency: '' }) }), 'is required'],
    ['deposit.overdraft_limit', () => depositProduct({ deposit: depositTerms({ overdraftLimit: -1n }) }), 'negative'],
    [
      'deposit.minimum_balance',
      () => depositProduct({ deposit: depositTerms({ minimumBalance: 100n }) }),
      'overdraft_limit',
    ],
    ['deposit.monthly_fee', () => depositProduct({ deposit: depositTerms({ monthlyFee: -5n }) }), 'negative'],
    [
      'deposit.per_transaction_limit',
      () => depositProduct({ deposit: depositTerms({ perTransactionLimit: 600_000n }) }),
      'daily_debit_limit',
    ],
    [
      'deposit.daily_debit_limit',
      () => depositProduct({ deposit: depositTerms({ dailyDebitLimit: -1n }) }),
      'negative',
    ],
    [
      'deposit.interest_rate_bps',
      () => depositProduct({ deposit: depositTerms({ interestRateBps: 10_001 }) }),
      'at most 10000',
    ],
    [
      'deposit.day_count',
      () => depositProduct({ deposit: depositTerms({ dayCount: DayCount.DAY_COUNT_UNSPECIFIED }) }),
      'ACT_365F',
    ],
    [
      'deposit.posting_frequency',
      () =>
        depositProduct({ deposit: depositTerms({ postingFrequency: PostingFrequency.POSTING_FREQUENCY_UNSPECIFIED }) }),
      'MONTHLY',
    ],
    [
      'deposit.term_months',
      () =>
        depositProduct({ deposit: depositTerms({ postingFrequency: PostingFrequency.POSTING_FREQUENCY_AT_MATURITY }) }),
      'AT_MATURITY',
    ],
    ['loan', () => loanProduct({ loan: undefined }), 'is required for a LOAN'],
    ['deposit', () => loanProduct({ deposit: depositTerms() }), 'must not be set for a LOAN'],
    ['loan.currency', () => loanProduct({ loan: loanTerms({ currency: 'XXX' }) }), 'ISO 4217'],
    ['loan.min_amount', () => loanProduct({ loan: loanTerms({ minAmount: 0n }) }), 'positive'],
    ['loan.max_amount', () => loanProduct({ loan: loanTerms({ maxAmount: 99_999n }) }), 'at least min_amount'],
    ['loan.min_term_months', () => loanProduct({ loan: loanTerms({ minTermMonths: 0 }) }), 'at least 1'],
    ['loan.max_term_months', () => loanProduct({ loan: loanTerms({ maxTermMonths: 5 }) }), 'at least min_term_months'],
    ['loan.max_term_months', () => loanProduct({ loan: loanTerms({ maxTermMonths: 601 }) }), 'at most 600'],
    ['loan.annual_rate_bps', () => loanProduct({ loan: loanTerms({ annualRateBps: 50_001 }) }), 'at most 50000'],
    ['loan.annual_rate', () => loanProduct({ loan: loanTerms({ annualRate: '9.48221234567' }) }), '10 decimals'],
    ['loan.annual_rate', () => loanProduct({ loan: loanTerms({ annualRate: '-1' }) }), '10 decimals'],
    ['loan.annual_rate', () => loanProduct({ loan: loanTerms({ annualRate: '9,5' }) }), '10 decimals'],
    ['loan.annual_rate', () => loanProduct({ loan: loanTerms({ annualRate: '500.0000000001' }) }), 'at most 500'],
    [
      'loan.annual_rate_bps',
      () => loanProduct({ loan: loanTerms({ annualRate: '9.4822', annualRateBps: 948 }) }),
      'same rate as annual_rate',
    ],
    [
      'loan.grace_on_principal_periods',
      () => loanProduct({ loan: loanTerms({ graceOnPrincipalPeriods: 6 }) }),
      'less than min_term_months',
    ],
    [
      'loan.grace_on_principal_periods',
      () =>
        loanProduct({
          loan: loanTerms({ graceOnPrincipalPeriods: 1, scheduleType: ScheduleType.SCHEDULE_TYPE_BULLET }),
        }),
      'BULLET',
    ],
    ['loan.grace_on_interest_kind', () => loanProduct({ loan: loanTerms({ graceOnInterestPeriods: 1 }) }), 'required'],
    [
      'loan.grace_on_interest_kind',
      () =>
        loanProduct({ loan: loanTerms({ graceOnInterestPeriods: 1, graceOnInterestKind: 9 as GraceOnInterestKind }) }),
      'DEFERRED or WAIVED',
    ],
    [
      'loan.instalment_multiple',
      () => loanProduct({ loan: loanTerms({ instalmentMultiple: -1n }) }),
      '0 to max_amount',
    ],
    [
      'loan.instalment_multiple',
      () =>
        loanProduct({
          loan: loanTerms({ instalmentMultiple: 100n, scheduleType: ScheduleType.SCHEDULE_TYPE_EQUAL_PRINCIPAL }),
        }),
      'EQUAL_INSTALLMENTS and FLAT',
    ],
    ['loan.penalty_rate_bps', () => loanProduct({ loan: loanTerms({ penaltyRateBps: 60_000 }) }), 'at most 50000'],
    [
      'loan.schedule_type',
      () => loanProduct({ loan: loanTerms({ scheduleType: ScheduleType.SCHEDULE_TYPE_UNSPECIFIED }) }),
      'EQUAL_INSTALLMENTS',
    ],
    ['loan.grace_days', () => loanProduct({ loan: loanTerms({ graceDays: 366 }) }), 'at most 365'],
    ['loan.day_count', () => loanProduct({ loan: loanTerms({ dayCount: 7 as DayCount }) }), 'ACT_365F'],
    ['validity', () => depositProduct({ validity: {} }), 'calendar_days or rolling'],
    [
      'validity.calendar_days.days',
      () => depositProduct({ validity: { kind: { $case: 'calendarDays', value: { days: 0, timeZone: 'UTC' } } } }),
      '1 to 3660',
    ],
    [
      'validity.calendar_days.time_zone',
      () =>
        depositProduct({
          validity: { kind: { $case: 'calendarDays', value: { days: 1, timeZone: 'Europe/Gotham' } } },
        }),
      'IANA',
    ],
    [
      'validity.calendar_days.time_zone',
      () => depositProduct({ validity: { kind: { $case: 'calendarDays', value: { days: 1, timeZone: '+01:00' } } } }),
      'IANA',
    ],
    [
      'validity.rolling.duration_seconds',
      () => depositProduct({ validity: { kind: { $case: 'rolling', value: { durationSeconds: 0 } } } }),
      'must be 1 to',
    ],
  ];

  it.each(invalid)('refuses a bad %s (%s) and writes nothing', async (field, make, description) => {
    const before = await catalogCounts(t.app);
    const err = await expectRpcError(
      t.client.createProduct(make()),
      status.INVALID_ARGUMENT,
      field,
      'INVALID_ARGUMENT',
    );
    expect(err.details).toContain(description);
    expect(await catalogCounts(t.app)).toEqual(before);
  });

  it('keeps an exact annual rate beside (or instead of) basis points', async () => {
    const exact = await t.client.createProduct(
      loanProduct({ loan: loanTerms({ annualRate: '9.4822', annualRateBps: 0 }) }),
    );
    expect(exact.product!.loan).toMatchObject({ annualRate: '9.4822', annualRateBps: 0 });
    const both = await t.client.createProduct(
      loanProduct({ loan: loanTerms({ annualRate: '6.9', annualRateBps: 690 }) }),
    );
    expect(both.product!.loan).toMatchObject({ annualRate: '6.9', annualRateBps: 690 });
    const bpsOnly = await t.client.createProduct(loanProduct({ loan: loanTerms({ annualRateBps: 690 }) }));
    expect(bpsOnly.product!.loan).toMatchObject({ annualRate: '', annualRateBps: 690 });
    expect(await get(exact.product!.productId, 1)).toMatchObject({ loan: { annualRate: '9.4822' } });
  });

  it('validates a draft update against the product kind, writing nothing', async () => {
    const req = loanProduct();
    await t.client.createProduct(req);
    const before = await catalogCounts(t.app);
    await expectRpcError(
      t.client.updateProductVersion({ ...req, version: 1, loan: undefined, deposit: depositTerms() }),
      status.INVALID_ARGUMENT,
      'loan',
    );
    await expectRpcError(
      t.client.updateProductVersion({ ...req, version: 1, loan: loanTerms({ minAmount: -1n }) }),
      status.INVALID_ARGUMENT,
      'loan.min_amount',
    );
    expect(await catalogCounts(t.app)).toEqual(before);
  });

  it('lists each product\u2019s latest version, page by page, filtered by kind', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = i % 2 ? loanProduct() : depositProduct();
      await t.client.createProduct(r);
      ids.push(r.productId);
    }
    await publish(ids[0]!, 1);
    await t.client.createProductVersion({ productId: ids[0]! });
    const seen = new Map<string, number>();
    let token = '';
    do {
      const page = await t.client.listProducts({ kind: 0, page: { pageSize: 2, pageToken: token } });
      expect(page.products.length).toBeLessThanOrEqual(2);
      for (const p of page.products) {
        expect(seen.has(p.productId)).toBe(false);
        seen.set(p.productId, p.version);
      }
      token = page.page!.nextPageToken;
    } while (token);
    for (const id of ids) expect(seen.has(id)).toBe(true);
    expect(seen.get(ids[0]!)).toBe(2);
    const ordered = [...seen.keys()];
    expect(ordered).toEqual([...ordered].sort());
    const loans = await t.client.listProducts({
      kind: ProductKind.PRODUCT_KIND_LOAN,
      page: { pageSize: 1000, pageToken: '' },
    });
    expect(loans.products.every((p) => p.kind === ProductKind.PRODUCT_KIND_LOAN)).toBe(true);
    expect(loans.products.map((p) => p.productId)).toEqual(expect.arrayContaining([ids[1], ids[3]]));
    await expectRpcError(
      t.client.listProducts({ kind: 0, page: { pageSize: 1, pageToken: '%%%' } }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
  });

  it('computes validUntil from a product version or an explicit spec', async () => {
    const req = depositProduct({
      validity: { kind: { $case: 'calendarDays', value: { days: 1, timeZone: 'Asia/Shanghai' } } },
    });
    await t.client.createProduct(req);
    await publish(req.productId, 1);
    const purchasedAt = toTimestamp(new Date('2024-01-10T14:00:00Z')); // 22:00 in Shanghai
    const fromProduct = await t.client.computeValidUntil({ productId: req.productId, version: 0, purchasedAt });
    expect(fromTimestamp(fromProduct.validUntil!).toISOString()).toBe('2024-01-10T16:00:00.000Z');
    const rolling = await t.client.computeValidUntil({
      productId: '',
      version: 0,
      validity: { kind: { $case: 'rolling', value: { durationSeconds: 86_400 } } },
      purchasedAt,
    });
    expect(fromTimestamp(rolling.validUntil!).toISOString()).toBe('2024-01-11T14:00:00.000Z');
    await expectRpcError(
      t.client.computeValidUntil({ productId: '', version: 0, purchasedAt }),
      status.INVALID_ARGUMENT,
      'validity',
    );
    await expectRpcError(
      t.client.computeValidUntil({
        productId: '',
        version: 0,
        validity: { kind: { $case: 'calendarDays', value: { days: 1, timeZone: 'Nowhere/Land' } } },
      }),
      status.INVALID_ARGUMENT,
      'purchased_at',
    );
    const loan = loanProduct();
    await t.client.createProduct(loan);
    await publish(loan.productId, 1);
    await expectRpcError(
      t.client.computeValidUntil({ productId: loan.productId, version: 0, purchasedAt }),
      status.FAILED_PRECONDITION,
      undefined,
      'PRODUCT_HAS_NO_VALIDITY',
    );
  });

  it('requires products:write to change the catalog; customer-bound tokens only read', async () => {
    const req = depositProduct();
    await t.client.createProduct(req);
    await publish(req.productId, 1);
    const reader = await t.clientWith(['products:read']);
    expect((await reader.getProduct({ productId: req.productId, version: 0 })).product!.version).toBe(1);
    await expectRpcError(reader.createProduct(depositProduct()), status.PERMISSION_DENIED, undefined, 'MISSING_SCOPE');
    await expectRpcError(
      reader.createProductVersion({ productId: req.productId }),
      status.PERMISSION_DENIED,
      undefined,
      'MISSING_SCOPE',
    );
    const bound = await t.clientWith(['products:read', 'products:write'], 'some-customer');
    expect((await bound.getProduct({ productId: req.productId, version: 1 })).product!.productId).toBe(req.productId);
    await expectRpcError(bound.createProduct(depositProduct()), status.PERMISSION_DENIED, undefined, 'CUSTOMER_TOKEN');
    await expectRpcError(
      bound.retireProductVersion({ productId: req.productId, version: 1 }),
      status.PERMISSION_DENIED,
    );
  });

  it('publishes its events to the product stream', async () => {
    const req = depositProduct({ productId: newProductId('stream') });
    await t.client.createProduct(req);
    const db = t.app.router.shards[0]!.db;
    const until = Date.now() + 20_000;
    for (;;) {
      const unsent = (await db('outbox').whereNull('sent_at').count('* as n').first()) as unknown as { n: bigint };
      if (unsent.n === 0n) break;
      if (Date.now() > until) throw new Error('the relay did not publish');
      await new Promise((r) => setTimeout(r, 50));
    }
    const [row] = (await db('outbox')
      .select('id')
      .where('subject', SUBJECTS.productCreated)
      .orderBy('seq', 'desc')) as {
      id: string;
    }[];
    const m = await t.app.nats.jsm.streams.getMessage('CB_PRODUCT', { last_by_subj: SUBJECTS.productCreated });
    expect(m?.header.get('Nats-Msg-Id')).toBe(row!.id);
    expect(ProductVersionChanged.decode(m!.data).product!.productId).toBe(req.productId);
  });
});
