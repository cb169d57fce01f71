// Write-off (WriteOffLoan): an ACTIVE loan's loss is booked and the loan is WRITTEN_OFF.
//   principal outstanding:        debit LOAN_LOSS_EXPENSE,      credit the loan's ledger account
//                                 (its balance, the principal outstanding, goes to zero);
//   interest accrued, uncollected: debit LOAN_INTEREST_INCOME,  credit LOAN_INTEREST_RECEIVABLE
//                                 (income recognised but never received is reversed, not lost);
//   penalties unpaid:             debit LOAN_PENALTY_INCOME,   credit LOAN_PENALTY_RECEIVABLE.
// Interest the schedule holds but that never accrued was never booked, so nothing reverses it.
// The status and the amounts are recorded first (write_off_posted = false, event
// loan_written_off), then the three transfers (ids derived from the loan id, one linked chain) are
// made; a crash or outage between leaves write_off_posted false for a retry or the sweeper.
// Written on the database's date (the business date where the kit provides it).
import { createHash } from 'node:crypto';
import {
  DomainError,
  hashedUuid,
  writeEvents,
  type Logger,
  type ShardRouter,
  readShardBusinessDate,
} from '@corebank/kit';
import type { Knex } from 'knex';
import { SystemAccountKind as G, type Transfer } from '@corebank/kit/gen/corebank/v1/account';
import { LoanStatus as L, RepaymentStatus as S, type WriteOffLoanResponse } from '@corebank/kit/gen/corebank/v1/loan';
import { CODES, singlePhase, type Accounts } from './clients/accounts.js';
import { SUBJECTS } from './events.js';
import { loanEvent } from './loans.js';
import { loanToProto } from './proto.js';
import { findLoan, lockLoan } from './store.js';
import { amountValue, writeOffs, writtenOffMinorUnits } from './metrics.js';

export interface WriteOffDeps {
  router: ShardRouter;
  accounts: Accounts;
  log: Logger;
}

const hashOf = (reason: string) => createHash('sha256').update(reason).digest('base64url');

export const writeOffTransferIds = (loanId: string) => ({
  principal: hashedUuid(loanId, 'write-off', 'principal'),
  interest: hashedUuid(loanId, 'write-off', 'interest'),
  penalty: hashedUuid(loanId, 'write-off', 'penalty'),
});

interface WriteOffRow {
  id: string;
  currency: string;
  ledger_account_id: string;
  written_off_principal: bigint;
  written_off_interest: bigint;
  written_off_penalties: bigint;
  write_off_key: string | null;
  write_off_hash: string | null;
  write_off_posted: boolean;
}

const readWriteOff = async (db: Knex | Knex.Transaction, id: string) =>
  (await db('loans')
    .select(
      'id',
      'currency',
      'ledger_account_id',
      'written_off_principal',
      'written_off_interest',
      'written_off_penalties',
      'write_off_key',
      'write_off_hash',
      'write_off_posted',
    )
    .where('id', id)
    .first()) as WriteOffRow | undefined;

export async function writeOffLoan(
  d: WriteOffDeps,
  loanId: string,
  key: string,
  reason: string,
  deadline?: Date,
): Promise<WriteOffLoanResponse> {
  const shard = d.router.byId(loanId)!;
  const hash = hashOf(reason);
  const loan = await findLoan(shard.db, loanId);
  if (!loan) throw DomainError.notFound('loan_id', 'loan');
  const fresh = await shard.db.transaction(async (tx) => {
    const locked = await lockLoan(tx, loanId);
    const w = (await readWriteOff(tx, loanId))!;
    if (locked!.status === L.LOAN_STATUS_WRITTEN_OFF) {
      if (w.write_off_key !== key || w.write_off_hash !== hash) {
        throw new DomainError(
          'ALREADY_EXISTS',
          'LOAN_ALREADY_WRITTEN_OFF',
          'idempotency_key: the loan was written off with another key or reason',
          [{ field: 'idempotency_key', description: 'the loan was written off with another key or reason' }],
        );
      }
      return undefined;
    }
    if (locked!.status !== L.LOAN_STATUS_ACTIVE) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'LOAN_NOT_ACTIVE',
        `loan_id: the loan is ${L[locked!.status]}`,
        [{ field: 'loan_id', description: 'is not active' }],
        { status: L[locked!.status] },
      );
    }
    const inFlight = await tx('loan_repayments')
      .where({ loan_id: loanId, status: S.REPAYMENT_STATUS_PENDING })
      .first('id');
    if (inFlight) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'REPAYMENT_IN_FLIGHT',
        'loan_id: a repayment of the loan is still being booked; try again',
        [{ field: 'loan_id', description: 'has a repayment being booked' }],
      );
    }
    const now = new Date();
    const totals = (await findLoan(tx, loanId))!;
    const { rows } = (await tx.raw(`select interest_receivable from loans where id = ?`, [loanId])) as {
      rows: { interest_receivable: bigint }[];
    };
    await tx('loans')
      .where('id', loanId)
      .update({
        status: L.LOAN_STATUS_WRITTEN_OFF,
        written_off_on: await readShardBusinessDate(tx),
        written_off_principal: totals.principal_outstanding,
        written_off_interest: rows[0]!.interest_receivable,
        written_off_penalties: totals.penalties_outstanding,
        interest_receivable: 0n,
        write_off_key: key,
        write_off_hash: hash,
        write_off_posted: false,
        version: tx.raw('version + 1'),
        updated_at: now,
      });
    const after = loanToProto((await findLoan(tx, loanId))!, shard.index);
    await writeEvents(tx, [loanEvent(SUBJECTS.writtenOff, after, now)]);
    return { currency: totals.currency, principal: totals.principal_outstanding };
  });
  if (fresh) {
    // Counted once, when this call's transaction wrote the loan off (a replay does not count).
    writeOffs.inc({ currency: fresh.currency });
    writtenOffMinorUnits.inc({ currency: fresh.currency }, amountValue(fresh.principal));
  }
  await postWriteOff(d, loanId, deadline);
  const w = (await readWriteOff(shard.db, loanId))!;
  return {
    loan: loanToProto((await findLoan(shard.db, loanId))!, shard.index),
    replayed: !fresh,
    principalWrittenOff: w.written_off_principal,
    interestReversed: w.written_off_interest,
    penaltiesReversed: w.written_off_penalties,
  };
}

/** Makes a written-off loan's transfers if they are not confirmed yet (idempotent: fixed ids). */
export async function postWriteOff(d: WriteOffDeps, loanId: string, deadline?: Date): Promise<void> {
  const shard = d.router.byId(loanId)!;
  const w = await readWriteOff(shard.db, loanId);
  if (!w || w.write_off_posted) return;
  const gl = (kind: G) => d.accounts.system(kind, shard.index, w.currency, deadline);
  const ids = writeOffTransferIds(loanId);
  const transfer = (id: string, debit: string, credit: string, amount: bigint, code: number): Transfer =>
    singlePhase({
      id,
      debitAccountId: debit,
      creditAccountId: credit,
      amount,
      code,
      reference: `loan ${loanId} write-off`,
    });
  const chain: Transfer[] = [];
  if (w.written_off_principal > 0n) {
    chain.push(
      transfer(
        ids.principal,
        await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_LOSS_EXPENSE),
        w.ledger_account_id,
        w.written_off_principal,
        CODES.writeOffPrincipal,
      ),
    );
  }
  if (w.written_off_interest > 0n) {
    chain.push(
      transfer(
        ids.interest,
        await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME),
        await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_RECEIVABLE),
        w.written_off_interest,
        CODES.writeOffInterest,
      ),
    );
  }
  if (w.written_off_penalties > 0n) {
    chain.push(
      transfer(
        ids.penalty,
        await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_INCOME),
        await gl(G.SYSTEM_ACCOUNT_KIND_LOAN_PENALTY_RECEIVABLE),
        w.written_off_penalties,
        CODES.writeOffPenalty,
      ),
    );
  }
  const [outcome] = chain.length ? await d.accounts.transferChains([chain], deadline) : ['ok'];
  if (outcome !== 'ok') {
    d.log.error({ loan_id: loanId, code: outcome }, 'the ledger refused a write-off; it will be retried');
    return;
  }
  await shard.db('loans').where('id', loanId).update({ write_off_posted: true });
}

/** Written-off loans whose transfers are not confirmed after `ageMs`. */
export async function staleWriteOffs(db: Knex, ageMs: number, limit: number): Promise<string[]> {
  const rows = (await db('loans')
    .select('id')
    .where('write_off_posted', false)
    .andWhere('updated_at', '<', db.raw('now() - make_interval(secs => ?)', [ageMs / 1000]))
    .orderBy('updated_at')
    .limit(limit)) as { id: string }[];
  return rows.map((r) => r.id);
}
