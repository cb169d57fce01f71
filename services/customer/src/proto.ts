// Conversions between customer rows and the wire messages. No identity number is ever returned:
// only its issuing country and last four characters.
import { toTimestamp } from '@corebank/kit';
import {
  CustomerKind,
  PostalAddress,
  type Customer,
  type CustomerStatus,
  type KycStatus,
  type RiskTier,
} from '@corebank/kit/gen/corebank/v1/customer';

export interface CustomerRow {
  id: string;
  channel: string;
  external_reference: string;
  create_hash: string;
  kind: CustomerKind;
  status: CustomerStatus;
  kyc_status: KycStatus;
  risk_tier: RiskTier;
  display_name: string;
  search_name: string;
  given_name: string;
  family_name: string;
  date_of_birth: string | null;
  legal_name: string;
  id_country: string;
  id_last4: string;
  email: string;
  phone: string;
  address: unknown;
  kyc_reason: string;
  status_reason: string;
  version: bigint;
  lease_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The columns every read selects (never id_hash: nothing outside the store needs it). */
export const CUSTOMER_COLUMNS = `id, channel, external_reference, create_hash, kind, status, kyc_status, risk_tier,
  display_name, search_name, given_name, family_name, date_of_birth::text as date_of_birth, legal_name, id_country,
  id_last4, email, phone, address, kyc_reason, status_reason, version, lease_id, created_at, updated_at`;

export function customerToProto(r: CustomerRow, shard: number): Customer {
  const person = r.kind === CustomerKind.CUSTOMER_KIND_PERSON;
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    kycStatus: r.kyc_status,
    riskTier: r.risk_tier,
    channel: r.channel,
    externalReference: r.external_reference,
    ...(person
      ? {
          person: {
            givenName: r.given_name,
            familyName: r.family_name,
            dateOfBirth: r.date_of_birth ?? '',
            nationalIdCountry: r.id_country,
            nationalId: '',
            nationalIdLast4: r.id_last4,
          },
        }
      : {
          business: {
            legalName: r.legal_name,
            registrationCountry: r.id_country,
            registrationNumber: '',
            registrationNumberLast4: r.id_last4,
          },
        }),
    contact: {
      email: r.email,
      phone: r.phone,
      ...(r.address ? { address: PostalAddress.fromJSON(r.address) } : {}),
    },
    displayName: r.display_name,
    kycReason: r.kyc_reason,
    statusReason: r.status_reason,
    shard,
    version: r.version,
    createdAt: toTimestamp(r.created_at),
    updatedAt: toTimestamp(r.updated_at),
  };
}

/** Display names are searched case- and accent-insensitively: "Zoë Ålund" is found by "zoe al". */
export const foldName = (s: string): string =>
  s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ').trim();
