// Opening deposit accounts on published product versions, for active KYC-verified customers,
// against real customer and product services; the pinned version survives a newer one.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { CustomerStatus, KycStatus } from '@corebank/kit/gen/corebank/v1/customer';
import { freePort } from '@corebank/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCustomers, type TestCustomers } from '../../customer/test/harness.js';
import { personRequest } from '../../customer/test/fixtures.js';
import { startCatalog, type TestCatalog } from '../../product/test/harness.js';
import { depositProduct, depositTerms, loanProduct } from '../../product/test/fixtures.js';
import { expectRpcError, fund, K, R, transfer, cashAccount } from './helpers.js';

describe.each([1, 3])('account opening on %i shard(s)', (shards) => {
  let catalog: TestCatalog;
  let people: TestCustomers;
  beforeAll(async () => {
    const [productPort, customerPort] = [await freePort(), await freePort()];
    catalog = await startCatalog({ GRPC_PORT: String(productPort) });
    people = await startCustomers(
      shards,
      { GRPC_PORT: String(customerPort), LOG_LEVEL: 'warn' },
      {
        CUSTOMER_SERVICE_ADDRESS: `127.0.0.1:${customerPort}`,
        PRODUCT_SERVICE_ADDRESS: `127.0.0.1:${productPort}`,
      },
    );
  });
  afterAll(async () => {
    await people?.stop();
    await catalog?.stop();
  });

  const verifiedCustomer = async () => {
    const { customer } = await people.client.createCustomer(personRequest());
    await people.client.submitKyc({ customerId: customer!.id });
    await people.client.decideKyc({ customerId: customer!.id, decision: KycStatus.KYC_STATUS_VERIFIED, reason: '' });
    return customer!;
  };
  const publishedDeposit = async (overdraft: bigint, minimumBalance = 0n) => {
    const { product } = await catalog.client.createProduct(
      depositProduct({ deposit: depositTerms({ overdraftLimit: overdraft, minimumBalance }) }),
    );
    await catalog.client.publishProductVersion({ productId: product!.productId, version: product!.version });
    return product!;
  };
  const open = (customerId: string, productId: string, key = 'main', productVersion = 0) =>
    people.bank.client.openDepositAccount({ idempotencyKey: key, customerId, productId, productVersion });

  it('opens on the product terms, pins the version, and replays for the same key', async () => {
    const c = await verifiedCustomer();
    const p = await publishedDeposit(5_000n);
    const { account, replayed } = await open(c.id, p.productId);
    expect(replayed).toBe(false);
    expect(account).toMatchObject({
      ownerId: c.id,
      currency: 'EUR',
      overdraftLimit: 5_000n,
      productId: p.productId,
      productVersion: 1,
      flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
    });
    // A newer version does not move the account.
    const { product: v2 } = await catalog.client.createProductVersion({ productId: p.productId });
    await catalog.client.updateProductVersion({
      productId: p.productId,
      version: v2!.version,
      name: v2!.name,
      description: v2!.description,
      deposit: depositTerms({ overdraftLimit: 99_000n }),
      validity: v2!.validity,
    });
    await catalog.client.publishProductVersion({ productId: p.productId, version: v2!.version });
    const again = await open(c.id, p.productId);
    await expectRpcError(open(c.id, p.productId, 'main', 2), status.ALREADY_EXISTS, 'idempotency_key');
    expect(again.replayed).toBe(true);
    expect(again.account!.id).toBe(account!.id);
    expect(again.account!.productVersion).toBe(1);
    const fresh = await open(c.id, p.productId, 'second');
    expect([fresh.account!.productVersion, fresh.account!.overdraftLimit]).toEqual([2, 99_000n]);
    expect((await people.bank.client.getAccount({ accountId: account!.id })).account!.overdraftLimit).toBe(5_000n);
  });

  it('lets the ledger enforce the overdraft limit atomically', async () => {
    const c = await verifiedCustomer();
    const p = await publishedDeposit(1_000n);
    const { account } = await open(c.id, p.productId);
    const cash = await cashAccount(people.bank, account!.shard);
    const send = async (amount: bigint) =>
      (
        await people.bank.client.createTransfers({
          transfers: [transfer({ debitAccountId: account!.id, creditAccountId: cash.id, amount })],
        })
      ).results[0]!.code;
    // Concurrent debits cannot together pass the limit.
    const codes = await Promise.all(Array.from({ length: 10 }, () => send(300n)));
    expect(codes.filter((c) => c === R.TRANSFER_RESULT_CODE_OK)).toHaveLength(3);
    expect(codes.filter((c) => c === R.TRANSFER_RESULT_CODE_EXCEEDS_CREDITS)).toHaveLength(7);
    await fund(people.bank, account!, 100n);
    expect(await send(200n)).toBe(R.TRANSFER_RESULT_CODE_OK);
  });

  it("keeps the product's minimum balance, atomically, with holds counted", async () => {
    const c = await verifiedCustomer();
    const p = await publishedDeposit(0n, 500n);
    const { account } = await open(c.id, p.productId);
    expect(account!.minimumBalance).toBe(500n);
    await fund(people.bank, account!, 1_000n);
    const cash = await cashAccount(people.bank, account!.shard);
    const send = async (amount: bigint, kind = K.TRANSFER_KIND_SINGLE_PHASE) =>
      (
        await people.bank.client.createTransfers({
          transfers: [transfer({ debitAccountId: account!.id, creditAccountId: cash.id, amount, kind })],
        })
      ).results[0]!;
    // Ten concurrent debits of 100 from 1,000 with 500 to keep: exactly five fit.
    const codes = await Promise.all(Array.from({ length: 10 }, async () => (await send(100n)).code));
    expect(codes.filter((x) => x === R.TRANSFER_RESULT_CODE_OK)).toHaveLength(5);
    expect(codes.filter((x) => x === R.TRANSFER_RESULT_CODE_BELOW_MINIMUM_BALANCE)).toHaveLength(5);
    // A hold counts against the minimum too; voiding it gives the room back.
    await fund(people.bank, account!, 100n);
    const hold = await send(100n, K.TRANSFER_KIND_PENDING);
    expect(hold.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await send(1n)).code).toBe(R.TRANSFER_RESULT_CODE_BELOW_MINIMUM_BALANCE);
    const voided = await people.bank.client.createTransfers({
      transfers: [
        transfer({
          debitAccountId: account!.id,
          creditAccountId: cash.id,
          kind: K.TRANSFER_KIND_VOID_PENDING,
          pendingId: hold.id,
        }),
      ],
    });
    expect(voided.results[0]!.code).toBe(R.TRANSFER_RESULT_CODE_OK);
    expect((await send(100n)).code).toBe(R.TRANSFER_RESULT_CODE_OK);
    const after = (await people.bank.client.getAccount({ accountId: account!.id })).account!;
    expect(after.creditsPosted - after.debitsPosted - after.debitsPending).toBe(500n);
  });

  it('refuses customers who are not verified or not active, and products that are not published deposits', async () => {
    const { customer: pending } = await people.client.createCustomer(personRequest());
    const p = await publishedDeposit(0n);
    await expectRpcError(open(pending!.id, p.productId), status.FAILED_PRECONDITION, undefined, 'KYC_NOT_VERIFIED');
    await expectRpcError(open(randomUUID(), p.productId), status.NOT_FOUND, 'customer_id');

    const c = await verifiedCustomer();
    await expectRpcError(open(c.id, 'no-such-product'), status.NOT_FOUND, 'product_id');
    const { product: draft } = await catalog.client.createProduct(depositProduct());
    await expectRpcError(
      open(c.id, draft!.productId, 'k', 1),
      status.FAILED_PRECONDITION,
      undefined,
      'PRODUCT_NOT_PUBLISHED',
    );
    const { product: loan } = await catalog.client.createProduct(loanProduct());
    await catalog.client.publishProductVersion({ productId: loan!.productId, version: 1 });
    await expectRpcError(open(c.id, loan!.productId), status.FAILED_PRECONDITION, undefined, 'NOT_A_DEPOSIT_PRODUCT');

    await people.client.freezeCustomer({ customerId: c.id, reason: 'test' });
    expect((await people.client.getCustomer({ customerId: c.id })).customer!.status).toBe(
      CustomerStatus.CUSTOMER_STATUS_FROZEN,
    );
    await expectRpcError(open(c.id, p.productId), status.FAILED_PRECONDITION, undefined, 'CUSTOMER_NOT_ACTIVE');
    await expectRpcError(
      people.bank.client.openDepositAccount({ idempotencyKey: '', customerId: '', productId: '', productVersion: 0 }),
      status.INVALID_ARGUMENT,
      'idempotency_key',
    );
    // Nothing was opened by any of these.
    expect((await people.bank.client.listAccounts({ ownerId: c.id })).accounts).toHaveLength(0);
    expect((await people.bank.client.listAccounts({ ownerId: pending!.id })).accounts).toHaveLength(0);
  });

  it('freezing blocks debits on every account of the customer; closing needs them at zero', async () => {
    const c = await verifiedCustomer();
    const p = await publishedDeposit(0n);
    const a = (await open(c.id, p.productId, 'a')).account!;
    const b = (await open(c.id, p.productId, 'b')).account!;
    await fund(people.bank, a, 1_000n);
    await people.client.freezeCustomer({ customerId: c.id, reason: 'fraud check' });
    const out = transfer({ debitAccountId: a.id, creditAccountId: b.id, amount: 1n });
    expect((await people.bank.client.createTransfers({ transfers: [out] })).results[0]!.code).toBe(
      R.TRANSFER_RESULT_CODE_DEBITS_BLOCKED,
    );
    await fund(people.bank, b, 5n);
    await people.client.unfreezeCustomer({ customerId: c.id, reason: 'cleared' });
    await expectRpcError(
      people.client.closeCustomer({ customerId: c.id, reason: 'leaving' }),
      status.FAILED_PRECONDITION,
      undefined,
      'ACCOUNT_BALANCE_NOT_ZERO',
    );
    const cash = await cashAccount(people.bank, a.shard);
    await people.bank.client.createTransfers({
      transfers: [
        transfer({ debitAccountId: a.id, creditAccountId: cash.id, amount: 1_000n }),
        transfer({ debitAccountId: b.id, creditAccountId: cash.id, amount: 5n }),
      ],
    });
    await people.client.closeCustomer({ customerId: c.id, reason: 'leaving' });
    expect((await people.bank.client.getAccount({ accountId: a.id })).account!.closed).toBe(true);
    // A closed owner opens nothing new, even by calling the ledger directly.
    await expectRpcError(
      people.bank.client.createAccounts({
        accounts: [
          { idempotencyKey: 'late', ownerId: c.id, currency: 'EUR', code: 1, overdraftLimit: 0n, reference: '' },
        ],
      }),
      status.FAILED_PRECONDITION,
      undefined,
      'OWNER_CLOSED',
    );
  });
});
