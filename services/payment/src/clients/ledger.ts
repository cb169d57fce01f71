// The account service as the payment service uses it: read accounts, find each shard's in-transit
// GL account, and make the saga's transfers. Every transfer id is derived from the payment id and
// the step, so a retried step replays the ledger's original result instead of moving money again.
import {
  callDeadline,
  DomainError,
  fromDownstream,
  hashedUuid,
  serviceClient,
  subjectOf,
  SystemAccounts,
  type Nats,
  type Principal,
  type ServiceIdentity,
} from '@corebank/kit';
import { AccountOpened } from '@corebank/kit/gen/corebank/v1/events';
import {
  AccountServiceClient,
  SystemAccountKind,
  TransferKind,
  TransferResultCode as R,
  type Account,
  type Transfer,
  type TransferResult,
} from '@corebank/kit/gen/corebank/v1/account';
import { PaymentStep as P } from '@corebank/kit/gen/corebank/v1/payment';
import type { PaymentRow } from '../proto.js';
import { TransferCalls } from './transfer-calls.js';

/** The chart-of-accounts code of payment transfers. */
export const PAYMENT_TRANSFER_CODE = 2;

export type AccountClient = ReturnType<typeof serviceClient<AccountServiceClient>>;

export const transferIds = (paymentId: string) => ({
  transfer: hashedUuid(paymentId, 'transfer'),
  hold: hashedUuid(paymentId, 'hold'),
  credit: hashedUuid(paymentId, 'credit'),
  post: hashedUuid(paymentId, 'post'),
  void: hashedUuid(paymentId, 'void'),
});

/**
 * What a step's ledger call came to: ok; refused by the ledger (a final verdict for this
 * transfer id, carried as the order's reason); or retry (the ledger could not be reached, the
 * deadline passed, or another transient failure: the same call is made again later).
 */
export type StepResult = { kind: 'ok' } | { kind: 'refused'; reason: string } | { kind: 'retry'; error: DomainError };

const RETRYABLE = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'RESOURCE_EXHAUSTED', 'ABORTED']);

/**
 * What the payment service needs of an account, all of which never changes once the account is
 * opened (owner, currency, shard, product version): cached, so an order does not ask the ledger.
 * The cache is filled two ways: by a first GetAccount, and ahead of any order by the ledger's
 * account_opened events (watchAccounts), so that a payer whose account was opened while this
 * process ran is never asked about. Since the facts never change, no event invalidates them, and
 * an event missed (a reconnect, a process started later) costs only that GetAccount.
 */
export type AccountFacts = Pick<Account, 'id' | 'ownerId' | 'currency' | 'shard' | 'productId' | 'productVersion'>;

/** Accounts whose facts are kept; the least recently used go first. */
const MAX_CACHED_ACCOUNTS = 100_000;

export class Ledger {
  private readonly systemAccounts = new SystemAccounts(async (deadline) => {
    try {
      return await this.client.listSystemAccounts({}, { deadline: this.deadline(deadline) });
    } catch (err) {
      throw fromDownstream(err, 'account', 'ListSystemAccounts');
    }
  });
  private facts = new Map<string, AccountFacts>();
  /** Steps made with this service's own identity, many orders' to a call (transfer-calls.ts). */
  private readonly calls = new TransferCalls(
    async (transfers, deadline) => (await this.client.createTransfers({ transfers }, { deadline })).results,
    (err) => !RETRYABLE.has(fromDownstream(err, 'account', 'CreateTransfers').code),
  );
  private watching: ReturnType<Nats['nc']['subscribe']> | undefined;

  constructor(
    readonly client: AccountClient,
    private readonly callTimeoutMs: number,
  ) {}

  /** Its tokens carry what services/kit/src/identities.ts allows the payment service towards the ledger. */
  static connect(address: string, identity: ServiceIdentity, callTimeoutMs: number): Ledger {
    return new Ledger(serviceClient(AccountServiceClient, address, identity, 'account'), callTimeoutMs);
  }

  /** Remembers the facts of every account the ledger opens from now on (see AccountFacts). */
  watchAccounts(nc: Nats['nc']): void {
    this.watching = nc.subscribe(subjectOf('account', 'account_opened'), {
      callback: (err, msg) => {
        if (err) return;
        try {
          const account = AccountOpened.decode(msg.data).account;
          if (account?.id) this.remember(account);
        } catch {
          // Not an AccountOpened: nothing learnt, the account is asked about when an order needs it.
        }
      },
    });
  }

  close(): void {
    this.watching?.unsubscribe();
    this.watching = undefined;
    this.client.close();
  }

  /** Keeps an account's facts as the most recently used; the least recently used go beyond the bound. */
  private remember(account: Account): AccountFacts {
    const { id, ownerId, currency, shard, productId, productVersion } = account;
    const facts: AccountFacts = { id, ownerId, currency, shard, productId, productVersion };
    this.facts.delete(id);
    if (this.facts.size >= MAX_CACHED_ACCOUNTS) this.facts.delete(this.facts.keys().next().value!);
    this.facts.set(id, facts);
    return facts;
  }

  /**
   * The account's facts, or undefined when the ledger has none with this id (not remembered: it
   * may be opened later). Its balances and state are not here: the ledger decides on those itself.
   * On a first read, a customer-bound caller's token goes along (`onBehalfOf`): the ledger itself
   * refuses another customer's account (PERMISSION_DENIED CUSTOMER_MISMATCH). A remembered account
   * is checked by the caller (requireCustomer against its owner, which never changes), and the
   * transfers that move its money carry the binding to the ledger again.
   */
  async account(id: string, deadline?: Date, onBehalfOf?: Principal): Promise<AccountFacts | undefined> {
    const known = this.facts.get(id);
    if (known) {
      this.facts.delete(id);
      this.facts.set(id, known);
      return known;
    }
    let account: Account | undefined;
    try {
      ({ account } = await this.client.getAccount(
        { accountId: id },
        { deadline: this.deadline(deadline), ...(onBehalfOf ? { onBehalfOf } : {}) },
      ));
    } catch (err) {
      const e = fromDownstream(err, 'account', 'GetAccount');
      if (e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
    return account ? this.remember(account) : undefined;
  }

  /** The in-transit GL account of a shard in a currency, or undefined when the ledger books none. */
  inTransitAccount(shard: number, currency: string, deadline?: Date): Promise<string | undefined> {
    return this.systemAccounts.find(SystemAccountKind.SYSTEM_ACCOUNT_KIND_IN_TRANSIT, shard, currency, deadline);
  }

  private deadline(outer?: Date): Date {
    return callDeadline(outer, this.callTimeoutMs);
  }

  /** The one transfer a step makes (built from the order alone, so every attempt sends the same body). */
  async transferFor(row: PaymentRow): Promise<Transfer> {
    const ids = transferIds(row.id);
    const base = {
      amount: row.amount,
      linked: false,
      pendingId: '',
      timeoutSeconds: 0,
      code: PAYMENT_TRANSFER_CODE,
      reference: `payment:${row.id}`,
      currency: '',
    };
    const inTransit = async (shard: number) => {
      const id = await this.inTransitAccount(shard, row.currency);
      if (!id)
        throw new DomainError(
          'INTERNAL',
          'NO_IN_TRANSIT_ACCOUNT',
          `no in-transit ${row.currency} account on shard ${shard}`,
        );
      return id;
    };
    switch (row.step) {
      case P.PAYMENT_STEP_TRANSFER:
        return {
          ...base,
          id: ids.transfer,
          kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
          debitAccountId: row.payer_account_id,
          creditAccountId: row.payee_account_id,
        };
      case P.PAYMENT_STEP_HOLD:
        return {
          ...base,
          id: ids.hold,
          kind: TransferKind.TRANSFER_KIND_PENDING,
          debitAccountId: row.payer_account_id,
          creditAccountId: await inTransit(row.payer_shard),
        };
      case P.PAYMENT_STEP_CREDIT:
        return {
          ...base,
          id: ids.credit,
          kind: TransferKind.TRANSFER_KIND_SINGLE_PHASE,
          debitAccountId: await inTransit(row.payee_shard),
          creditAccountId: row.payee_account_id,
        };
      case P.PAYMENT_STEP_POST:
      case P.PAYMENT_STEP_VOID: {
        const post = row.step === P.PAYMENT_STEP_POST;
        return {
          ...base,
          id: post ? ids.post : ids.void,
          kind: post ? TransferKind.TRANSFER_KIND_POST_PENDING : TransferKind.TRANSFER_KIND_VOID_PENDING,
          // 0: the whole pending amount.
          amount: 0n,
          pendingId: ids.hold,
          debitAccountId: row.payer_account_id,
          creditAccountId: await inTransit(row.payer_shard),
        };
      }
      default:
        throw new DomainError('INTERNAL', 'NO_SUCH_STEP', `payment ${row.id} has no ledger step ${row.step}`);
    }
  }

  /**
   * Makes the step's transfer. Any result code of the ledger is its verdict on this transfer id
   * (a definitive failure); failures to get a verdict are retryable. For post and void every
   * refusal is also retried (logged by the caller): the hold is the saga's own and never expires,
   * so a refusal means an outage or a bug, never a reason to settle the order differently.
   * With `onBehalfOf` (a step made while serving its customer-bound caller), the ledger checks the
   * customer owns the debited account (DEBIT_ACCOUNT_NOT_OWNED otherwise): such a step has a call
   * of its own; every other goes with other orders' steps (TransferCalls).
   */
  async execute(row: PaymentRow, deadline?: Date, onBehalfOf?: Principal): Promise<StepResult> {
    let results: TransferResult[];
    try {
      const transfer = await this.transferFor(row);
      results = onBehalfOf
        ? (
            await this.client.createTransfers(
              { transfers: [transfer] },
              { deadline: this.deadline(deadline), onBehalfOf },
            )
          ).results
        : [await this.calls.submit(transfer, this.deadline(deadline))];
    } catch (err) {
      const e = fromDownstream(err, 'account', 'CreateTransfers');
      if (RETRYABLE.has(e.code)) return { kind: 'retry', error: e };
      // The ledger refused the request itself (bad input): as final as a result code.
      return { kind: 'refused', reason: e.reason };
    }
    const code = results[0]?.code ?? R.TRANSFER_RESULT_CODE_UNSPECIFIED;
    if (code === R.TRANSFER_RESULT_CODE_OK) return { kind: 'ok' };
    const reason = R[code] ?? String(code);
    if (row.step === P.PAYMENT_STEP_POST || row.step === P.PAYMENT_STEP_VOID) {
      return {
        kind: 'retry',
        error: new DomainError('INTERNAL', 'SETTLEMENT_REFUSED', `the ledger refused to settle the hold: ${reason}`),
      };
    }
    return { kind: 'refused', reason };
  }
}
