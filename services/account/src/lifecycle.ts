// Owner-wide account lifecycle, driven by the customer service: freezing blocks debits on all
// of an owner's accounts in one statement (they all live on the owner's shard), and closing
// closes all of them or none. Both lock the rows, so they serialise with ledger batches.
import { DomainError, writeEvents, type ShardRouter, type Tx } from '@corebank/kit';
import { ACCOUNT_COLUMNS, lockOwner } from './store.js';
import { accountUpdatedEvent } from './events.js';
import { accountToProto, type AccountRow } from './proto.js';

/**
 * An owner the ledger knows has accounts on its shard. An unknown owner is NOT_FOUND before
 * anything is written: freezing or closing a string nobody owns must not leave an owners row
 * behind (a closed one would refuse that owner's first account for ever).
 */
async function requireKnownOwner(tx: Tx, ownerId: string): Promise<void> {
  const known = await tx('accounts').where({ owner_id: ownerId }).first(tx.raw('1 as one'));
  if (!known) throw DomainError.notFound('owner_id', 'owner');
}

export async function setOwnerDebitsBlocked(router: ShardRouter, ownerId: string, blocked: boolean): Promise<number> {
  const shard = router.byCustomer(ownerId);
  return shard.db.transaction(async (tx) => {
    await requireKnownOwner(tx, ownerId);
    await lockOwner(tx, ownerId);
    await tx('owners').where({ owner_id: ownerId }).update({ debits_blocked: blocked });
    const changed = (await tx('accounts')
      .where({ owner_id: ownerId, debits_blocked: !blocked })
      .update({ debits_blocked: blocked })
      .returning(ACCOUNT_COLUMNS.split(/,\s*/))) as AccountRow[];
    const now = new Date();
    await writeEvents(
      tx,
      changed.map((r) => accountUpdatedEvent(accountToProto(r, shard.index), shard.index, now)),
    );
    const [{ n }] = (await tx('accounts').where({ owner_id: ownerId }).count({ n: '*' })) as [{ n: bigint }];
    return Number(n);
  });
}

export async function closeOwnerAccounts(router: ShardRouter, ownerId: string): Promise<number> {
  const shard = router.byCustomer(ownerId);
  return shard.db.transaction(async (tx) => {
    await requireKnownOwner(tx, ownerId);
    await lockOwner(tx, ownerId);
    const rows = (
      await tx.raw(`select ${ACCOUNT_COLUMNS} from accounts where owner_id = ? order by id for update`, [ownerId])
    ).rows as AccountRow[];
    const busy = rows.find(
      (r) => r.debits_pending !== 0n || r.credits_pending !== 0n || r.debits_posted !== r.credits_posted,
    );
    if (busy) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'ACCOUNT_BALANCE_NOT_ZERO',
        `account ${busy.id} is not at zero (posted ${busy.credits_posted - busy.debits_posted}, pending debits ${busy.debits_pending}, pending credits ${busy.credits_pending})`,
        [],
        { account_id: busy.id },
      );
    }
    await tx('owners').where({ owner_id: ownerId }).update({ closed: true });
    const closing = rows.filter((r) => !r.closed).map((r) => r.id);
    if (closing.length) {
      const closed = (await tx('accounts')
        .whereIn('id', closing)
        .update({ closed: true })
        .returning(ACCOUNT_COLUMNS.split(/,\s*/))) as AccountRow[];
      const now = new Date();
      await writeEvents(
        tx,
        closed.map((r) => accountUpdatedEvent(accountToProto(r, shard.index), shard.index, now)),
      );
    }
    return rows.length;
  });
}
