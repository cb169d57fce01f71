// Opening a deposit account on a product: the customer must exist, be active and KYC-verified;
// the product version must be a published deposit product. Its currency, overdraft limit, minimum
// balance and version become the ledger account's, so the ledger enforces them atomically on every
// transfer.
import { DomainError, type RpcContext, type ShardRouter } from '@corebank/kit';
import {
  CreateAccountResultCode,
  type OpenDepositAccountRequest,
  type OpenDepositAccountResponse,
} from '@corebank/kit/gen/corebank/v1/account';
import { CustomerStatus, KycStatus } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductKind, ProductStatus } from '@corebank/kit/gen/corebank/v1/product';
import { getCustomer, getProduct, type Peers } from './clients/peers.js';
import { accountIdFor, createAccounts, getAccount } from './store.js';

/** Chart-of-accounts code of customer deposit accounts. */
export const DEPOSIT_ACCOUNT_CODE = 100;

export interface OpeningDeps {
  router: ShardRouter;
  peers: Peers;
}

const keyReused = () =>
  new DomainError(
    'ALREADY_EXISTS',
    'EXISTS_WITH_DIFFERENT_BODY',
    'idempotency_key: already used for another product or version',
    [{ field: 'idempotency_key', description: 'already used with a different product or version' }],
  );

async function findAccount(router: ShardRouter, id: string) {
  try {
    return await getAccount(router, id);
  } catch (err) {
    if (err instanceof DomainError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

export async function openDepositAccount(
  deps: OpeningDeps,
  req: OpenDepositAccountRequest,
  ctx: RpcContext,
): Promise<OpenDepositAccountResponse> {
  // A retry returns the account the key opened, whatever "latest version" or the customer's
  // state mean now.
  const key = `deposit:${req.idempotencyKey}`;
  const earlier = await findAccount(deps.router, accountIdFor(req.customerId, key));
  if (earlier) {
    if (
      earlier.productId !== req.productId ||
      (req.productVersion !== 0 && req.productVersion !== earlier.productVersion)
    ) {
      throw keyReused();
    }
    return { account: earlier, replayed: true };
  }

  // A customer-bound caller's binding goes along: the customer service checks it again.
  const customer = await getCustomer(deps.peers, req.customerId, ctx.deadline, ctx.principal);
  if (customer.status !== CustomerStatus.CUSTOMER_STATUS_ACTIVE) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'CUSTOMER_NOT_ACTIVE',
      `customer_id: the customer is ${CustomerStatus[customer.status]}`,
    );
  }
  if (customer.kycStatus !== KycStatus.KYC_STATUS_VERIFIED) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'KYC_NOT_VERIFIED',
      `customer_id: KYC is ${KycStatus[customer.kycStatus]}`,
    );
  }
  const product = await getProduct(deps.peers, req.productId, req.productVersion, ctx.deadline);
  if (product.status !== ProductStatus.PRODUCT_STATUS_PUBLISHED) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'PRODUCT_NOT_PUBLISHED',
      `product_version: version ${product.version} is ${ProductStatus[product.status]}`,
    );
  }
  if (product.kind !== ProductKind.PRODUCT_KIND_DEPOSIT || !product.deposit) {
    throw new DomainError(
      'FAILED_PRECONDITION',
      'NOT_A_DEPOSIT_PRODUCT',
      `product_id: ${product.productId} is not a deposit product`,
    );
  }
  const terms = product.deposit;
  const [result] = await createAccounts(deps.router, [
    {
      // Its own key space, so a channel's CreateAccounts keys never collide with openings.
      idempotencyKey: key,
      ownerId: customer.id,
      currency: terms.currency,
      code: DEPOSIT_ACCOUNT_CODE,
      // No overdraft means debits may not exceed credits; an overdraft is the ledger's limit.
      flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
      overdraftLimit: terms.overdraftLimit,
      minimumBalance: terms.minimumBalance,
      reference: `${product.productId} v${product.version}`,
      productId: product.productId,
      productVersion: product.version,
    },
  ]);
  // Two openings with one key racing on different versions: the loser is told, not given the winner's.
  if (result!.code === CreateAccountResultCode.CREATE_ACCOUNT_RESULT_CODE_EXISTS_WITH_DIFFERENT_BODY) throw keyReused();
  return { account: result!.account, replayed: result!.replayed };
}
