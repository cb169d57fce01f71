// The account service (the ledger) as the loan service uses it: the borrower's accounts, each
// loan's own ledger account, the shard's loan-interest-income GL account, and transfers. Every
// transfer id is derived from the loan or repayment id and its purpose, so a retried step replays
// the ledger's recorded result instead of moving money again.
import {
  callDeadline,
  DomainError,
  fromDownstream,
  serviceClient,
  SystemAccounts,
  type ServiceIdentity,
} from '@corebank/kit';
import {
  AccountServiceClient,
  CreateAccountResultCode,
  SystemAccountKind,
  TransferKind,
  TransferResultCode as R,
  type Account,
  type Transfer,
} from '@corebank/kit/gen/corebank/v1/account';

/**
 * Chart-of-accounts codes. A loan's ledger account (code LOAN_ACCOUNT_CODE, owned by the borrower,
 * credits_must_not_exceed_debits) carries its principal outstanding: debited by the disbursement,
 * credited by the principal part of each repayment; it can never be repaid beyond what was lent.
 */
export const CODES = {
  loanAccount: 7000,
  disbursement: 7001,
  repaymentPrincipal: 7002,
  repaymentInterest: 7003,
  /** A repayment's interest already accrued, to LOAN_INTEREST_RECEIVABLE. */
  repaymentReceivable: 7004,
  /** A repayment's penalties, to LOAN_PENALTY_RECEIVABLE. */
  repaymentPenalty: 7005,
  /** RunLoanDay's GL postings of a batch's accruals (interest, penalty). */
  interestAccrual: 7010,
  penaltyAccrual: 7011,
  /** WriteOffLoan: principal to LOAN_LOSS_EXPENSE, accrued interest and penalties reversed. */
  writeOffPrincipal: 7020,
  writeOffInterest: 7021,
  writeOffPenalty: 7022,
  /** A repayment on a written-off loan, to LOAN_RECOVERY_INCOME. */
  recovery: 7023,
} as const;

/**
 * A single-phase transfer as every money movement of the loan service is one (no hold, no
 * timeout; linked into a chain by the caller where its legs must go together; the currency is the
 * accounts' own). `businessDate`: the day it belongs to, for a transfer made by the close of
 * business for the day it is closing.
 */
export const singlePhase = (t: {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  code: number;
  reference: string;
  businessDate?: string | undefined;
}): Transfer => ({
  id: t.id,
  debitAccountId: t.debitAccountId,
  creditAccountId: t.creditAccountId,
  amount: t.amount,
  kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
  linked: false,
  pendingId: '',
  timeoutSeconds: 0,
  code: t.code,
  reference: t.reference,
  currency: '',
  ...(t.businessDate ? { businessDate: t.businessDate } : {}),
});

/** Codes of the ledger's results a caller sees per transfer of a batch. */
export type TransferOutcome = 'ok' | string;

export type LedgerStep = { kind: 'ok' } | { kind: 'refused'; reason: string };

export class Accounts {
  private readonly systemAccounts = new SystemAccounts(async (deadline) => {
    try {
      return await this.client.listSystemAccounts({}, { deadline: this.deadline(deadline) });
    } catch (err) {
      throw fromDownstream(err, 'account', 'ListSystemAccounts');
    }
  });

  constructor(
    private readonly client: ReturnType<typeof serviceClient<AccountServiceClient>>,
    private readonly timeoutMs: number,
  ) {}

  static connect(address: string, identity: ServiceIdentity, timeoutMs: number): Accounts {
    return new Accounts(serviceClient(AccountServiceClient, address, identity, 'account'), timeoutMs);
  }

  close(): void {
    this.client.close();
  }

  private deadline(outer?: Date): Date {
    return callDeadline(outer, this.timeoutMs);
  }

  /** The account, or undefined when the ledger has none with this id. */
  async get(id: string, deadline?: Date): Promise<Account | undefined> {
    try {
      return (await this.client.getAccount({ accountId: id }, { deadline: this.deadline(deadline) })).account;
    } catch (err) {
      const e = fromDownstream(err, 'account', 'GetAccount');
      if (e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** An owner's accounts (at most `max`; enough for a scorecard's turnover). */
  async ofOwner(ownerId: string, deadline?: Date, max = 1000): Promise<Account[]> {
    const out: Account[] = [];
    let pageToken = '';
    do {
      try {
        const res = await this.client.listAccounts(
          { ownerId, page: { pageSize: 200, pageToken } },
          { deadline: this.deadline(deadline) },
        );
        out.push(...res.accounts);
        pageToken = res.page?.nextPageToken ?? '';
      } catch (err) {
        throw fromDownstream(err, 'account', 'ListAccounts');
      }
    } while (pageToken && out.length < max);
    return out;
  }

  /** The loan's own ledger account, made once (idempotent by the loan id). */
  async openLoanAccount(loanId: string, customerId: string, currency: string, deadline?: Date): Promise<Account> {
    let res;
    try {
      res = await this.client.createAccounts(
        {
          accounts: [
            {
              idempotencyKey: `loan:${loanId}`,
              ownerId: customerId,
              currency,
              code: CODES.loanAccount,
              flags: { debitsMustNotExceedCredits: false, creditsMustNotExceedDebits: true },
              overdraftLimit: 0n,
              reference: `loan ${loanId}`,
            },
          ],
        },
        { deadline: this.deadline(deadline) },
      );
    } catch (err) {
      throw fromDownstream(err, 'account', 'CreateAccounts');
    }
    const r = res.results[0];
    if (r?.code !== CreateAccountResultCode.CREATE_ACCOUNT_RESULT_CODE_OK || !r.account) {
      throw new DomainError('INTERNAL', 'LOAN_ACCOUNT_NOT_OPENED', 'the ledger did not open the loan account');
    }
    return r.account;
  }

  /** The loan-interest-income GL account of a shard in a currency. */
  async interestIncome(shard: number, currency: string, deadline?: Date): Promise<string> {
    return this.system(SystemAccountKind.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME, shard, currency, deadline);
  }

  /** A GL account of the bank (SystemAccountKind) on a shard in a currency. */
  async system(kind: SystemAccountKind, shard: number, currency: string, deadline?: Date): Promise<string> {
    const id = await this.systemAccounts.find(kind, shard, currency, deadline);
    if (!id) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        kind === SystemAccountKind.SYSTEM_ACCOUNT_KIND_LOAN_INTEREST_INCOME
          ? 'NO_INTEREST_INCOME_ACCOUNT'
          : 'NO_SYSTEM_ACCOUNT',
        `the ledger books no ${currency} on shard ${shard} (SYSTEM_CURRENCIES)`,
      );
    }
    return id;
  }

  /**
   * Applies many transfers in ONE ledger call: `chains` are independent linked chains (each all or
   * nothing; a chain of one is a single transfer). Returns per chain 'ok' (OK or replayed OK for
   * every member) or the ledger's refusal code. Transport failures throw.
   */
  async transferChains(chains: Transfer[][], deadline?: Date): Promise<TransferOutcome[]> {
    const flat = chains.flatMap((c) => c.map((t, i) => ({ ...t, linked: i < c.length - 1 })));
    if (!flat.length) return [];
    let results;
    try {
      ({ results } = await this.client.createTransfers({ transfers: flat }, { deadline: this.deadline(deadline) }));
    } catch (err) {
      throw fromDownstream(err, 'account', 'CreateTransfers');
    }
    let at = 0;
    return chains.map((c) => {
      const mine = results.slice(at, at + c.length);
      at += c.length;
      if (mine.every((r) => r.code === R.TRANSFER_RESULT_CODE_OK)) return 'ok';
      const failed = mine.find(
        (r) => r.code !== R.TRANSFER_RESULT_CODE_OK && r.code !== R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED,
      );
      return R[failed?.code ?? R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED].replace('TRANSFER_RESULT_CODE_', '');
    });
  }

  /**
   * Applies transfers as one linked chain (all or nothing). OK (or replayed OK) for every member:
   * ok; a refusal: the first member's result code, as the reason. Transport failures throw (the
   * caller retries the same ids later).
   */
  async transfer(transfers: Transfer[], deadline?: Date): Promise<LedgerStep> {
    const chain = transfers.map((t, i) => ({ ...t, linked: i < transfers.length - 1 }));
    let results;
    try {
      ({ results } = await this.client.createTransfers({ transfers: chain }, { deadline: this.deadline(deadline) }));
    } catch (err) {
      throw fromDownstream(err, 'account', 'CreateTransfers');
    }
    const failed = results.find(
      (r) => r.code !== R.TRANSFER_RESULT_CODE_OK && r.code !== R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED,
    );
    if (!failed && results.every((r) => r.code === R.TRANSFER_RESULT_CODE_OK)) return { kind: 'ok' };
    const code = failed?.code ?? R.TRANSFER_RESULT_CODE_LINKED_EVENT_FAILED;
    return { kind: 'refused', reason: R[code].replace('TRANSFER_RESULT_CODE_', '') };
  }

  /** Co-lending: the loan's participation account for a partner (a liability, debits never beyond credits). */
  async openParticipationAccount(
    loanId: string,
    partnerId: string,
    customerId: string,
    currency: string,
    code: number,
    deadline?: Date,
  ): Promise<Account> {
    let res;
    try {
      res = await this.client.createAccounts(
        {
          accounts: [
            {
              idempotencyKey: `loan:${loanId}:partner:${partnerId}`,
              ownerId: customerId,
              currency,
              code,
              flags: { debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false },
              overdraftLimit: 0n,
              reference: `loan ${loanId} partner ${partnerId}`,
            },
          ],
        },
        { deadline: this.deadline(deadline) },
      );
    } catch (err) {
      throw fromDownstream(err, 'account', 'CreateAccounts');
    }
    const r = res.results[0];
    if (r?.code !== CreateAccountResultCode.CREATE_ACCOUNT_RESULT_CODE_OK || !r.account) {
      throw new DomainError('INTERNAL', 'PARTICIPATION_ACCOUNT_NOT_OPENED', 'the ledger did not open the account');
    }
    return r.account;
  }

  /** Co-lending: the SERVICING_FEE_INCOME GL account of a shard in a currency. */
  async servicingFeeIncome(shard: number, currency: string, deadline?: Date): Promise<string> {
    const kind = SystemAccountKind.SYSTEM_ACCOUNT_KIND_SERVICING_FEE_INCOME;
    const id = await this.systemAccounts.find(kind, shard, currency, deadline);
    if (!id) {
      throw new DomainError(
        'FAILED_PRECONDITION',
        'NO_SERVICING_FEE_INCOME_ACCOUNT',
        `the ledger books no ${currency} on shard ${shard} (SYSTEM_CURRENCIES)`,
      );
    }
    return id;
  }
}
