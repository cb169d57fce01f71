// What the payment service asks the customer and product services before an order is accepted:
// the payer customer's risk tier, and the limits of the product version the payer account was
// opened on. Product versions are immutable once published, so their limits are cached for the
// life of the process. The risk tier is cached too, but briefly and watched: every customer event
// (CB_CUSTOMER, on its core NATS subject) carries the customer as the change left it, and sets its
// tier here (a customer created or changed while this process runs is not asked about), a reconnect
// drops them all (events may have been missed meanwhile), and an entry lives at most
// RISK_TIER_CACHE_MS, the bound on staleness should an event be lost. A tier raised is then in
// force for new orders as soon as its event arrives (milliseconds after the change commits),
// rather than at once.
import { callDeadline, fromDownstream, serviceClient, type Nats, type ServiceIdentity } from '@corebank/kit';
import type { AccountFacts } from './ledger.js';
import { CustomerServiceClient, RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { CustomerCreated } from '@corebank/kit/gen/corebank/v1/events';
import { ProductServiceClient } from '@corebank/kit/gen/corebank/v1/product';
import type { TierName } from '../config.js';
import { NO_LIMITS, type Limits } from '../limits.js';

/** Customers whose tier is kept; the oldest entries go first. */
const MAX_CACHED_TIERS = 100_000;

type NatsConnection = Nats['nc'];
type Subscription = ReturnType<NatsConnection['subscribe']>;

const TIER_NAMES: Partial<Record<RiskTier, TierName>> = {
  [RiskTier.RISK_TIER_LOW]: 'LOW',
  [RiskTier.RISK_TIER_MEDIUM]: 'MEDIUM',
  [RiskTier.RISK_TIER_HIGH]: 'HIGH',
};

/** A customer's tier as the risk rules name it; one not set counts as HIGH (the strictest). */
const tierOf = (t: RiskTier | undefined): TierName => TIER_NAMES[t ?? RiskTier.RISK_TIER_UNSPECIFIED] ?? 'HIGH';

export class Peers {
  private readonly limits = new Map<string, Limits>();
  private readonly tiers = new Map<string, { tier: TierName; until: number }>();
  /** Bumped by every invalidation: a tier read while one happened is not kept. */
  private generation = 0;
  private watching: Subscription | undefined;

  constructor(
    private readonly customers: ReturnType<typeof serviceClient<CustomerServiceClient>>,
    private readonly products: ReturnType<typeof serviceClient<ProductServiceClient>>,
    private readonly callTimeoutMs: number,
    /** How long a customer's tier is kept (0: asked for every order). */
    private readonly tierCacheMs = 0,
  ) {}

  /**
   * Watches the customer events that invalidate a cached tier. Without a watch no tier is cached
   * (nothing would tell this process of a change).
   */
  watchCustomers(nc: NatsConnection): void {
    if (this.tierCacheMs <= 0) return;
    const sub = nc.subscribe('corebank.customer.>', {
      callback: (err, msg) => {
        if (err) return this.forgetTiers();
        try {
          // Every customer event carries the customer (field 2) as the change left it.
          const customer = CustomerCreated.decode(msg.data).customer;
          if (customer?.id) this.learnTier(customer.id, tierOf(customer.riskTier));
          else this.forgetTiers();
        } catch {
          this.forgetTiers();
        }
      },
    });
    this.watching = sub;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') this.forgetTiers();
      }
    })().catch(() => undefined);
  }

  /** A tier an event told: kept as the newest (a read in flight meanwhile keeps nothing). */
  private learnTier(id: string, tier: TierName): void {
    this.generation++;
    this.keepTier(id, tier);
  }

  private keepTier(id: string, tier: TierName): void {
    this.tiers.delete(id);
    if (this.tiers.size >= MAX_CACHED_TIERS) this.tiers.delete(this.tiers.keys().next().value!);
    this.tiers.set(id, { tier, until: Date.now() + this.tierCacheMs });
  }

  private forgetTiers(): void {
    this.generation++;
    this.tiers.clear();
  }

  static connect(
    customerAddress: string,
    productAddress: string,
    identity: ServiceIdentity,
    callTimeoutMs: number,
    tierCacheMs = 0,
  ): Peers {
    return new Peers(
      serviceClient(CustomerServiceClient, customerAddress, identity, 'customer'),
      serviceClient(ProductServiceClient, productAddress, identity, 'product'),
      callTimeoutMs,
      tierCacheMs,
    );
  }

  close(): void {
    this.watching?.unsubscribe();
    this.watching = undefined;
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
    const cached = this.tiers.get(ownerId);
    if (cached && cached.until > Date.now()) return cached.tier;
    const generation = this.generation;
    const tier = await this.askTier(ownerId, deadline);
    if (this.watching && this.generation === generation) this.keepTier(ownerId, tier);
    return tier;
  }

  private async askTier(ownerId: string, deadline?: Date): Promise<TierName> {
    try {
      const { customer } = await this.customers.getCustomer(
        { customerId: ownerId },
        { deadline: this.deadline(deadline) },
      );
      return tierOf(customer?.riskTier);
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
