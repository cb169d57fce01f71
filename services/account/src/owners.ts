// The owners table: one row per account owner with its freeze and close state.
import type { Tx } from '@corebank/kit';

/** Locks the owner's row (creating it if needed) and returns its state. */
export async function lockOwner(tx: Tx, ownerId: string): Promise<{ debits_blocked: boolean; closed: boolean }> {
  const { rows } = await tx.raw(
    `insert into owners (owner_id) values (?) on conflict (owner_id) do update set owner_id = excluded.owner_id
     returning debits_blocked, closed`,
    [ownerId],
  );
  return rows[0] as { debits_blocked: boolean; closed: boolean };
}
