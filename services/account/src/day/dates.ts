// The account service's side of the business date: its shards' copies follow the global value
// (the ledger stamps every booking with its shard's copy, see kit business-date.ts), and it serves
// GetBusinessDate and SetBusinessDate.
import {
  type BusinessDay,
  createDayPool,
  DomainError,
  isIsoDate,
  migrateDay,
  readBusinessDate,
  writeBusinessDate,
} from '@corebank/kit';
import { cobMigrations, lastClosedDate } from './store.js';

/** Migrates the global database's schema of the bank's day: the business date and the COB's tables. */
export async function migrateGlobalDay(url: string, service: string): Promise<void> {
  const db = createDayPool(url, service, 1);
  try {
    await migrateDay(db, cobMigrations);
  } finally {
    await db.destroy();
  }
}

export async function getBusinessDate(day: BusinessDay) {
  const [businessDate, lastClosed] = await Promise.all([readBusinessDate(day.db), lastClosedDate(day.db)]);
  return { businessDate, lastClosedDate: lastClosed };
}

/**
 * Sets the business date. Only a bank that has never closed a day may move it freely forward
 * (its first day); otherwise days move by the close of business, and `force` (test
 * environments) is needed to go back or to skip days.
 */
export async function setBusinessDate(day: BusinessDay, date: string, force: boolean): Promise<string> {
  if (!isIsoDate(date)) throw DomainError.invalid([{ field: 'business_date', description: 'must be YYYY-MM-DD' }]);
  if (!force) {
    const [current, lastClosed] = await Promise.all([readBusinessDate(day.db), lastClosedDate(day.db)]);
    if (date < current) {
      throw new DomainError('FAILED_PRECONDITION', 'BUSINESS_DATE_BACKWARDS', 'the business date only moves forward');
    }
    if (date > current && lastClosed !== '') {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'BUSINESS_DAYS_NOT_CLOSED',
        'the business date moves by the close of business once a day has been closed',
      );
    }
  }
  await day.db.transaction((tx) => writeBusinessDate(tx, date));
  // This replica's shards now; the others' as their followers hear the NOTIFY.
  await day.follower.refresh();
  return date;
}
