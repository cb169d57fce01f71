// The bank's own GL accounts on the ledger (cash, in-transit, loan interest income, ...), one per
// kind, shard and currency, as services that book against them find them: ListSystemAccounts,
// remembered. They never change once opened, so the ledger is asked once per process, and again
// only for an account not seen yet (a currency added to SYSTEM_CURRENCIES since).
import type { ListSystemAccountsResponse, SystemAccountKind } from './gen/corebank/v1/account.js';

export class SystemAccounts {
  private readonly ids = new Map<string, string>();

  constructor(
    /** One ListSystemAccounts call (its errors already mapped by the caller). */
    private readonly list: (deadline?: Date) => Promise<ListSystemAccountsResponse>,
  ) {}

  /** The account id of a kind on a shard in a currency, or undefined when the ledger books none. */
  async find(kind: SystemAccountKind, shard: number, currency: string, deadline?: Date): Promise<string | undefined> {
    const key = `${kind}:${shard}:${currency}`;
    if (!this.ids.has(key)) {
      for (const s of (await this.list(deadline)).accounts) {
        if (s.account) this.ids.set(`${s.kind}:${s.account.shard}:${s.account.currency}`, s.account.id);
      }
    }
    return this.ids.get(key);
  }
}
