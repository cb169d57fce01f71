// Request validation: every bad field is named, all at once, before anything is written.
import { enumValue, isUuid, repeated, text as boundedText, Violations } from '@corebank/kit';
import {
  CustomerKind,
  CustomerStatus,
  KycStatus,
  RiskTier,
  type Contact,
  type CreateCustomerRequest,
  type ListCustomersRequest,
} from '@corebank/kit/gen/corebank/v1/customer';
import { identityProblem, isCountry } from './identity.js';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164 = /^\+[1-9]\d{6,14}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export const CONTACT_FIELDS = ['email', 'phone', 'address'] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];

/** A text column: bounded length, no control characters (the kit's rule). */
function text(v: Violations, field: string, value: string, max: number, required = true): boolean {
  return boundedText(v, field, value, { max, required });
}

function country(v: Violations, field: string, value: string): boolean {
  if (!value) v.add(field, 'is required (ISO 3166-1 alpha-2)');
  else if (!isCountry(value)) v.add(field, 'is not an ISO 3166-1 alpha-2 country code');
  else return true;
  return false;
}

/** A calendar date YYYY-MM-DD between 1900-01-01 and today (UTC). */
function dateOfBirth(v: Violations, field: string, value: string, today = new Date()): void {
  const m = DATE.exec(value);
  if (!m) return v.add(field, 'must be a date YYYY-MM-DD');
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    return v.add(field, 'is not a calendar date');
  }
  if (y < 1900) return v.add(field, 'must be 1900-01-01 or later');
  if (t > today.getTime()) v.add(field, 'must not be in the future');
}

export function validateContact(v: Violations, c: Contact | undefined, only: readonly ContactField[] = CONTACT_FIELDS) {
  const p = 'contact';
  if (only.includes('email') && c?.email && text(v, `${p}.email`, c.email, 254, false) && !EMAIL.test(c.email)) {
    v.add(`${p}.email`, 'is not an email address');
  }
  if (only.includes('phone') && c?.phone && !E164.test(c.phone)) {
    v.add(`${p}.phone`, 'must be an E.164 number, for example +4930123456');
  }
  const a = c?.address;
  if (only.includes('address') && a) {
    if (a.lines.length < 1 || a.lines.length > 4) v.add(`${p}.address.lines`, 'must hold 1 to 4 lines');
    else a.lines.forEach((l, i) => text(v, `${p}.address.lines[${i}]`, l, 100));
    text(v, `${p}.address.city`, a.city, 100);
    text(v, `${p}.address.postal_code`, a.postalCode, 20, false);
    text(v, `${p}.address.region`, a.region, 100, false);
    country(v, `${p}.address.country`, a.country);
  }
}

export function validateCreate(req: CreateCustomerRequest): void {
  const v = new Violations();
  text(v, 'external_reference', req.externalReference, 128);
  if (req.kind === CustomerKind.CUSTOMER_KIND_PERSON) {
    const p = req.person;
    if (!p) v.add('person', 'is required for a PERSON');
    else {
      text(v, 'person.given_name', p.givenName, 100);
      text(v, 'person.family_name', p.familyName, 100);
      dateOfBirth(v, 'person.date_of_birth', p.dateOfBirth);
      if (country(v, 'person.national_id_country', p.nationalIdCountry)) {
        const problem = identityProblem('person', p.nationalIdCountry, p.nationalId);
        if (problem) v.add('person.national_id', problem);
      }
      if (p.nationalIdLast4) v.add('person.national_id_last4', 'is output only');
    }
    if (req.business) v.add('business', 'must not be set for a PERSON');
  } else if (req.kind === CustomerKind.CUSTOMER_KIND_BUSINESS) {
    const b = req.business;
    if (!b) v.add('business', 'is required for a BUSINESS');
    else {
      text(v, 'business.legal_name', b.legalName, 200);
      if (country(v, 'business.registration_country', b.registrationCountry)) {
        const problem = identityProblem('business', b.registrationCountry, b.registrationNumber);
        if (problem) v.add('business.registration_number', problem);
      }
      if (b.registrationNumberLast4) v.add('business.registration_number_last4', 'is output only');
    }
    if (req.person) v.add('person', 'must not be set for a BUSINESS');
  } else {
    v.add('kind', 'must be CUSTOMER_KIND_PERSON or CUSTOMER_KIND_BUSINESS');
  }
  validateContact(v, req.contact);
  v.throwIfAny();
}

export function validateCustomerId(id: string, field = 'customer_id'): void {
  const v = new Violations();
  if (!id) v.add(field, 'is required');
  else if (id.length !== 36 || !isUuid(id.toLowerCase())) v.add(field, 'is not a customer id');
  v.throwIfAny();
}

export function validateUpdateMask(v: Violations, mask: string[]): ContactField[] {
  if (!mask.length) return [...CONTACT_FIELDS];
  if (!repeated(v, 'update_mask', mask, { max: CONTACT_FIELDS.length })) return [];
  const out: ContactField[] = [];
  mask.forEach((m, i) => {
    if ((CONTACT_FIELDS as readonly string[]).includes(m)) out.push(m as ContactField);
    else v.add(`update_mask[${i}]`, `must be one of ${CONTACT_FIELDS.join(', ')}`);
  });
  return out;
}

/** A reason is free text: line breaks are fine, other control characters are not. */
export function validateReason(v: Violations, reason: string, required = false): void {
  boundedText(v, 'reason', reason, { max: 500, required, multiline: true });
}

export const isKnown = <E extends number>(e: Record<number, string>, value: E): boolean =>
  value > 0 && e[value] !== undefined;

export function validateListFilters(v: Violations, req: ListCustomersRequest): void {
  text(v, 'name_prefix', req.namePrefix, 200, false);
  enumValue(v, 'status', req.status, CustomerStatus, { allowUnspecified: true });
  enumValue(v, 'kyc_status', req.kycStatus, KycStatus, { allowUnspecified: true });
  enumValue(v, 'kind', req.kind, CustomerKind, { allowUnspecified: true });
  if (req.identityNumber && !req.identityCountry) v.add('identity_country', 'is required with identity_number');
  if (req.identityCountry && !isCountry(req.identityCountry))
    v.add('identity_country', 'is not an ISO 3166-1 alpha-2 country code');
  text(v, 'identity_number', req.identityNumber, 64, false);
}

export function validateRiskTier(v: Violations, tier: RiskTier): void {
  if (!isKnown(RiskTier, tier)) v.add('risk_tier', 'must be RISK_TIER_LOW, RISK_TIER_MEDIUM or RISK_TIER_HIGH');
}
