// Request validation: every bad field is named, all at once, before anything is written.
import { isUuid, Violations } from '@corebank/kit';
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

const CONTROL = /\p{Cc}/u;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164 = /^\+[1-9]\d{6,14}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export const CONTACT_FIELDS = ['email', 'phone', 'address'] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];

function text(v: Violations, field: string, value: string, max: number, required = true): void {
  if (!value.trim()) {
    if (required) v.add(field, 'is required');
    return;
  }
  if (value.length > max) v.add(field, `must be at most ${max} characters`);
  else if (CONTROL.test(value)) v.add(field, 'must not contain control characters');
}

function country(v: Violations, field: string, value: string): boolean {
  if (!value) v.add(field, 'is required (ISO 3166-1 alpha-2)');
  else if (!isCountry(value)) v.add(field, `"${value.slice(0, 8)}" is not an ISO 3166-1 alpha-2 country code`);
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
  if (only.includes('email') && c?.email) {
    if (c.email.length > 254 || !EMAIL.test(c.email)) v.add(`${p}.email`, 'is not an email address');
  }
  if (only.includes('phone') && c?.phone && !E164.test(c.phone)) {
    v.add(`${p}.phone`, 'must be an E.164 number, for example +4930123456');
  }
  const a = c?.address;
  if (only.includes('address') && a) {
    if (a.lines.length < 1 || a.lines.length > 4) v.add(`${p}.address.lines`, 'must hold 1 to 4 lines');
    a.lines.forEach((l, i) => text(v, `${p}.address.lines[${i}]`, l, 100));
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
  else if (!isUuid(id.toLowerCase())) v.add(field, 'is not a customer id');
  v.throwIfAny();
}

export function validateUpdateMask(v: Violations, mask: string[]): ContactField[] {
  if (!mask.length) return [...CONTACT_FIELDS];
  const out: ContactField[] = [];
  mask.forEach((m, i) => {
    if ((CONTACT_FIELDS as readonly string[]).includes(m)) out.push(m as ContactField);
    else v.add(`update_mask[${i}]`, `must be one of ${CONTACT_FIELDS.join(', ')}`);
  });
  return out;
}

export function validateReason(v: Violations, reason: string, required = false): void {
  text(v, 'reason', reason, 500, required);
}

export const isKnown = <E extends number>(e: Record<number, string>, value: E): boolean =>
  value > 0 && e[value] !== undefined;

export function validateListFilters(v: Violations, req: ListCustomersRequest): void {
  if (req.namePrefix.length > 200) v.add('name_prefix', 'must be at most 200 characters');
  if (req.status && !isKnown(CustomerStatus, req.status)) v.add('status', 'is not a customer status');
  if (req.kycStatus && !isKnown(KycStatus, req.kycStatus)) v.add('kyc_status', 'is not a KYC status');
  if (req.kind && !isKnown(CustomerKind, req.kind)) v.add('kind', 'is not a customer kind');
  if (req.identityNumber && !req.identityCountry) v.add('identity_country', 'is required with identity_number');
  if (req.identityCountry && !isCountry(req.identityCountry))
    v.add('identity_country', 'is not an ISO 3166-1 alpha-2 country code');
  if (req.identityNumber.length > 64) v.add('identity_number', 'is too long');
}

export function validateRiskTier(v: Violations, tier: RiskTier): void {
  if (!isKnown(RiskTier, tier)) v.add('risk_tier', 'must be RISK_TIER_LOW, RISK_TIER_MEDIUM or RISK_TIER_HIGH');
}
