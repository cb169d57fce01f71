// The service identities table (services/kit/src/identities.ts) is who may do what between
// services: pinned here, so that widening a service's rights is a visible change of this test.
import { allowedScopes, SERVICE_IDENTITIES } from '@corebank/kit';
import { describe, expect, it } from 'vitest';
import { SCOPES as ACCOUNT } from '../../account/src/service.js';
import { BACKDATE_SCOPE } from '../../account/src/ledger/validate.js';
import { SCOPES as CUSTOMER } from '../../customer/src/service.js';
import { SCOPES as LOAN } from '../../loan/src/service.js';
import { SCOPES as PAYMENT } from '../../payment/src/service.js';
import { SCOPES as PRODUCT } from '../../product/src/service.js';

const RPC_SCOPES: Record<string, Record<string, string>> = {
  account: ACCOUNT,
  customer: CUSTOMER,
  loan: LOAN,
  payment: PAYMENT,
  product: PRODUCT,
};

const FIELD_SCOPES: Record<string, string[]> = { account: [BACKDATE_SCOPE] };

describe('service identities', () => {
  it('is exactly this table', () => {
    expect(SERVICE_IDENTITIES).toEqual({
      account: { customer: ['customers:read'], product: ['products:read'], loan: ['loans:admin'] },
      customer: { account: ['accounts:admin'] },
      product: {},
      payment: {
        account: ['accounts:read', 'transfers:write', 'ledger:read'],
        customer: ['customers:read'],
        product: ['products:read'],
      },
      loan: {
        account: ['accounts:read', 'accounts:write', 'transfers:write', 'ledger:read', 'ledger:close'],
        customer: ['customers:read'],
        product: ['products:read'],
      },
    });
  });

  it('lets the payment service create ledger transfers and read accounts, never ledger:admin', () => {
    const ledger = allowedScopes('payment', 'account');
    expect(ledger).toContain('transfers:write');
    expect(ledger).toContain('accounts:read');
    expect(ledger).not.toContain('ledger:admin');
    expect(ledger).not.toContain('accounts:admin');
    // CheckLedgerInvariant needs a scope the payment service can never hold.
    expect(ledger).not.toContain(ACCOUNT.checkLedgerInvariant);
  });

  it('gives no service an admin scope it does not need, and no service a way to call itself', () => {
    for (const [caller, targets] of Object.entries(SERVICE_IDENTITIES)) {
      for (const [target, scopes] of Object.entries(targets)) {
        expect(target, `${caller} calls itself`).not.toBe(caller);
        for (const s of scopes ?? []) {
          // Every scope held is one some RPC of the callee requires.
          // (or a scope that unlocks one field: dating a ledger booking to the day being closed).
          expect(
            [...Object.values(RPC_SCOPES[target] ?? {}), ...(FIELD_SCOPES[target] ?? [])],
            `${caller} -> ${target}: ${s}`,
          ).toContain(s);
          // Freezing a customer's accounts; the close of business running a shard's loan day.
          if (s.endsWith(':admin'))
            expect(['customer -> account: accounts:admin', 'account -> loan: loans:admin']).toContain(
              `${caller} -> ${target}: ${s}`,
            );
        }
      }
    }
    expect(allowedScopes('product', 'account')).toEqual([]);
    expect(allowedScopes('nobody', 'account')).toEqual([]);
  });
});
