// A partner lender's statement for a date range: every loan it funded that was disbursed in the
// range or had a repayment applied in it, with its share, the principal it funded, the principal
// and interest collected for it and the servicing fees withheld. transfer_ids are the ledger
// transfers to and from its funding accounts (the fees go to SERVICING_FEE_INCOME), so:
//   debits of its funding accounts in the range  = principal_disbursed
//   credits of its funding accounts in the range = principal_collected + interest_paid_out
// Dates are business dates: a disbursement's is the loan's disbursed_on, a repayment's the
// business date it was made on (a collection's, the day the close of business collected it for).
import { DomainError, Violations, type ShardRouter } from '@corebank/kit';
import type {
  GetPartnerStatementRequest,
  GetPartnerStatementResponse,
  PartnerStatementLoan,
  PartnerStatementTotals,
} from '@corebank/kit/gen/corebank/v1/loan';
import { partnerDisbursementId, partnerToProto, partnerTransferIds } from './colending.js';
import { partnerActivity } from './colending-store.js';
import { findPartner, partnerIdField } from './partners.js';
import { dateField } from './validate.js';

const MAX_DAYS = 366;

export function validateStatement(req: GetPartnerStatementRequest): void {
  const v = new Violations();
  partnerIdField(v, req.partnerId);
  dateField(v, 'from_date', req.fromDate, true);
  dateField(v, 'to_date', req.toDate, true);
  v.throwIfAny();
  const days = (Date.parse(req.toDate) - Date.parse(req.fromDate)) / 86_400_000;
  if (days < 0) v.add('to_date', 'must be on or after from_date');
  else if (days > MAX_DAYS) v.add('to_date', `must be at most ${MAX_DAYS} days after from_date`);
  v.throwIfAny();
}

export async function partnerStatement(
  router: ShardRouter,
  req: GetPartnerStatementRequest,
): Promise<GetPartnerStatementResponse> {
  validateStatement(req);
  const partner = await findPartner(router, req.partnerId);
  if (!partner) throw DomainError.notFound('partner_id', 'partner lender');
  const { fromDate: from, toDate: to } = req;
  const perShard = await Promise.all(router.shards.map((s) => partnerActivity(s.db, req.partnerId, from, to)));
  const loans: PartnerStatementLoan[] = [];
  for (const { loans: rows, repayments } of perShard) {
    for (const l of rows) {
      const share = l.partners.find((p) => p.partner_id === req.partnerId)!;
      const entry: PartnerStatementLoan = {
        loanId: l.id,
        currency: l.currency,
        sharePpm: share.share_ppm,
        principalDisbursed: 0n,
        principalCollected: 0n,
        interestCollected: 0n,
        servicingFees: 0n,
        interestPaidOut: 0n,
        fundingAccountId: share.funding_account_id,
        transferIds: [],
      };
      if (l.disbursed_on >= from && l.disbursed_on <= to && BigInt(share.principal) > 0n) {
        entry.principalDisbursed = BigInt(share.principal);
        entry.transferIds.push(partnerDisbursementId(l.id, req.partnerId));
      }
      for (const r of repayments.filter((x) => x.loan_id === l.id)) {
        const s = r.partner_splits.find((x) => x.partner_id === req.partnerId);
        if (!s) continue;
        const [principal, interest, fee] = [BigInt(s.principal), BigInt(s.interest), BigInt(s.fee)];
        const ids = partnerTransferIds(r.id, req.partnerId);
        entry.principalCollected += principal;
        entry.interestCollected += interest;
        entry.servicingFees += fee;
        entry.interestPaidOut += interest - fee;
        if (principal > 0n) entry.transferIds.push(ids.principal);
        if (interest - fee > 0n) entry.transferIds.push(ids.interest);
      }
      if (entry.transferIds.length || entry.servicingFees > 0n) loans.push(entry);
    }
  }
  const totals = new Map<string, PartnerStatementTotals>();
  for (const l of loans) {
    const t = totals.get(l.currency) ?? {
      currency: l.currency,
      principalDisbursed: 0n,
      principalCollected: 0n,
      interestCollected: 0n,
      servicingFees: 0n,
      interestPaidOut: 0n,
    };
    t.principalDisbursed += l.principalDisbursed;
    t.principalCollected += l.principalCollected;
    t.interestCollected += l.interestCollected;
    t.servicingFees += l.servicingFees;
    t.interestPaidOut += l.interestPaidOut;
    totals.set(l.currency, t);
  }
  return {
    partner: partnerToProto(partner),
    fromDate: from,
    toDate: to,
    loans,
    totals: [...totals.values()].sort((a, b) => a.currency.localeCompare(b.currency)),
  };
}
