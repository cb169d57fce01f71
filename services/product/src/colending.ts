// Co-lending terms of a loan product: the partner lenders that fund each loan with the bank, each
// one's share in parts per million, and what a declining partner means. The loan service checks
// that the partners are registered when a loan is applied for; here only the shape is checked.
import type { Violations } from '@corebank/kit';
import { PartnerDeclinePolicy, type LoanTerms } from '@corebank/kit/gen/corebank/v1/product';

/** The loan service's partner ids (services/loan/src/partners.ts). */
export const PARTNER_ID = /^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$/;
export const MAX_PARTNERS = 5;
export const PPM = 1_000_000;

export function validateCoLending(v: Violations, l: LoanTerms, p = 'loan'): void {
  const partners = l.partners ?? [];
  if (partners.length > MAX_PARTNERS) {
    v.add(`${p}.partners`, `must name at most ${MAX_PARTNERS} partners`);
    return;
  }
  const seen = new Set<string>();
  let sum = 0;
  partners.forEach((s, i) => {
    if (!PARTNER_ID.test(s.partnerId)) {
      v.add(`${p}.partners[${i}].partner_id`, 'must be 2 to 64 lower-case letters, digits or hyphens');
    } else if (seen.has(s.partnerId)) v.add(`${p}.partners[${i}].partner_id`, 'is named twice');
    seen.add(s.partnerId);
    if (s.sharePpm < 1 || s.sharePpm >= PPM) v.add(`${p}.partners[${i}].share_ppm`, `must be 1 to ${PPM - 1}`);
    else sum += s.sharePpm;
  });
  if (sum > PPM) v.add(`${p}.partners`, `shares must sum to at most ${PPM} (the bank funds the rest)`);
  const policy = l.partnerDecline ?? 0;
  if (partners.length > 0 && !(policy in PartnerDeclinePolicy && policy > 0)) {
    v.add(`${p}.partner_decline`, 'must be BANK_TAKES_SHARE or REJECT with partners');
  } else if (partners.length === 0 && policy !== 0) {
    v.add(`${p}.partner_decline`, 'applies only with partners');
  }
}
