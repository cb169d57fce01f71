// What the payment service asks the customer and product services before an order is accepted:
// the payer customer's risk tier, and the limits of the product version the payer account was
// opened on. Product versions are immutable once published, so their limits are cached for the
// life of the process; the risk tier is asked every time (a tier raised a second ago must count).
import { callDeadline, fromDownstream, serviceClient, type ServiceIdentity } from '@corebank/kit';
import type { AccountFacts } from './ledger.js';
import { CustomerServiceClient, RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { ProductServiceClient } from '@corebank/kit/gen/corebank/v1/product';
import type { TierName } from '../config.js';
import { NO_LIMITS, type Limits } from '../limits.js';

const TIER_NAMES: Partial<Record<RiskTier, TierName>> = {
  [RiskTier.RISK_TIER_LOW]: 'LOW',
  [RiskTier.RISK_TIER_MEDIUM]: 'MEDIUM',
  [RiskTier.RISK_TIER_HIGH]: 'HIGH',
};

export class Peers {
  private readonly limits = new Map<string, Limits>();

  constructor(
    private readonly customers: ReturnType<typeof serviceClient<CustomerServiceClient>>,
    private readonly products: ReturnType<typeof serviceClient<ProductServiceClient>>,
    private readonly callTimeoutMs: number,
  ) {}

  static connect(
    customerAddress: string,
    productAddress: string,
    identity: ServiceIdentity,
    callTimeoutMs: number,
  ): Peers {
    return new Peers(
      serviceClient(CustomerServiceClient, customerAddress, identity, 'customer'),
      serviceClient(ProductServiceClient, productAddress, identity, 'product'),
      callTimeoutMs,
    );
  }

  close(): void {
    this.customers.close();
    this.products.close();
  }

  private deadline(outer?: Date): Date {
    return callDeadline(outer, this.callTimeoutMs);
  }

  /**
   * The owner's risk tier. An owner the customer service does not know (a bank-internal owner, or
   * accounts opened straight on the ledger) is treated as HIGH: the strictest thresholds apply.
   */
  async riskTier(ownerId: string, deadline?: Date): Promise<TierName> {
    try {
      const { customer } = await this.customers.getCustomer(
        { customerId: ownerId },
        { deadline: this.deadline(deadline) },
      );
      return TIER_NAMES[customer?.riskTier ?? RiskTier.RISK_TIER_UNSPECIFIED] ?? 'HIGH';
    } catch (err) {
      const e = fromDownstream(err, 'customer', 'GetCustomer');
      if (e.code === 'NOT_FOUND' || e.code === 'INVALID_ARGUMENT') return 'HIGH';
      throw e;
    }
  }

  /** The limits of the product version the account was opened on (none without a product). */
  async limitsOf(account: AccountFacts, deadline?: Date): Promise<Limits> {
    if (!account.productId) return NO_LIMITS;
    const key = `${account.productId}@${account.productVersion}`;
    const cached = this.limits.get(key);
    if (cached) return cached;
    let product;
    try {
      ({ product } = await this.products.getProduct(
        { productId: account.productId, version: account.productVersion },
        { deadline: this.deadline(deadline) },
      ));
    } catch (err) {
      throw fromDownstream(err, 'product', 'GetProduct');
    }
    const limits: Limits = {
      perTransaction: product?.deposit?.perTransactionLimit ?? 0n,
      daily: product?.deposit?.dailyDebitLimit ?? 0n,
    };
    this.limits.set(key, limits);
    return limits;
  }
}
