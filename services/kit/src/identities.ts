// Least-privilege service identities, declared once: which services each corebank service may
// call, and with which scopes. A service mints its own tokens with its own key (kid
// `service:<name>`, see auth.ts) and only with these scopes; every verifier refuses a service
// token whose scopes are not in this table for the service it was sent to, so a compromised pod
// can act only as its own, narrow identity. Any change here is a change of who may do what:
// identities.test.ts pins the table.

export const SERVICES = ['account', 'customer', 'product', 'payment', 'loan'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Service name -> the services it calls -> the scopes its tokens for that service may carry. */
export const SERVICE_IDENTITIES: Readonly<
  Record<ServiceName, Readonly<Partial<Record<ServiceName, readonly string[]>>>>
> = {
  // Opening a deposit account checks the customer (active, KYC) and the product version (and the
  // close of business reads deposit products); the close of business runs each shard's loan day.
  account: { customer: ['customers:read'], product: ['products:read'], loan: ['loans:admin'] },
  // Freeze, unfreeze and close block, unblock and close the customer's accounts.
  customer: { account: ['accounts:admin'] },
  product: {},
  // Reads payer and payee accounts, finds each shard's in-transit account (ledger:read, never
  // ledger:admin), makes the saga's transfers; asks the risk tier and the product limits.
  payment: {
    account: ['accounts:read', 'transfers:write', 'ledger:read'],
    customer: ['customers:read'],
    product: ['products:read'],
  },
  // Checks the applicant (status, KYC, risk tier) and the loan product; opens the loan's own
  // ledger account, finds the shard's GL accounts (ledger:read), disburses and collects; its
  // loan day (the close of business) dates its bookings to the day closed (ledger:close).
  loan: {
    account: ['accounts:read', 'accounts:write', 'transfers:write', 'ledger:read', 'ledger:close'],
    customer: ['customers:read'],
    product: ['products:read'],
  },
};

export function isServiceName(s: string): s is ServiceName {
  return (SERVICES as readonly string[]).includes(s);
}

/** The scopes `caller` may hold on its tokens for `target` (none when it may not call it). */
export function allowedScopes(caller: string, target: string): readonly string[] {
  if (!isServiceName(caller) || !isServiceName(target)) return [];
  return SERVICE_IDENTITIES[caller][target] ?? [];
}

/** The audience (aud claim) of tokens for a service. */
export const audienceOf = (service: string): string => `corebank.${service}`;

/** Every service's audience: what a channel token that calls the whole API lists. */
export const ALL_AUDIENCES: readonly string[] = SERVICES.map(audienceOf);
