// Customer rows on their home shard: create (idempotent by channel and external reference), read,
// and one helper that applies a change with its events in one transaction.
import { createHmac, randomUUID } from 'node:crypto';
import { DomainError, hashedUuid, writeEvents, type OutboxEvent, type Shard, type ShardRouter } from '@corebank/kit';
import {
  Contact,
  CustomerKind,
  CustomerStatus,
  KycStatus,
  PostalAddress,
  RiskTier,
  type CreateCustomerRequest,
  type Customer,
} from '@corebank/kit/gen/corebank/v1/customer';
import { customerCreated } from './events.js';
import { identityHash, lastFour, normalizeIdentity, type IdentityKind } from './identity.js';
import { CUSTOMER_COLUMNS, customerToProto, foldName, type CustomerRow } from './proto.js';

/** Risk tier of a customer nobody has assessed yet. */
export const INITIAL_RISK_TIER = RiskTier.RISK_TIER_MEDIUM;

/**
 * The customer id: a UUID (version 8) derived from the onboarding channel and its reference, so
 * a retried create finds the same row. Its hash (kit bucketOf) picks the home shard.
 */
export function customerIdFor(channel: string, externalReference: string): string {
  return hashedUuid('customer', channel, externalReference);
}

export const shardOf = (router: ShardRouter, id: string): Shard => router.byCustomer(id.toLowerCase());

function identityOf(req: CreateCustomerRequest): { kind: IdentityKind; country: string; number: string } {
  return req.kind === CustomerKind.CUSTOMER_KIND_PERSON
    ? { kind: 'person', country: req.person!.nationalIdCountry, number: req.person!.nationalId }
    : { kind: 'business', country: req.business!.registrationCountry, number: req.business!.registrationNumber };
}

/** Keyed, so that the stored body hash reveals nothing about the identity number it covers. */
function createHashOf(key: Uint8Array, req: CreateCustomerRequest): string {
  const id = identityOf(req);
  const body = [
    req.kind,
    req.person?.givenName ?? '',
    req.person?.familyName ?? '',
    req.person?.dateOfBirth ?? '',
    req.business?.legalName ?? '',
    id.country,
    normalizeIdentity(id.number),
    Contact.toJSON(req.contact ?? { email: '', phone: '' }),
  ];
  return createHmac('sha256', key).update(JSON.stringify(body)).digest('base64url');
}

export async function createCustomer(
  router: ShardRouter,
  key: Uint8Array,
  channel: string,
  req: CreateCustomerRequest,
): Promise<{ customer: Customer; replayed: boolean }> {
  const id = customerIdFor(channel, req.externalReference);
  const shard = shardOf(router, id);
  const ident = identityOf(req);
  const person = req.kind === CustomerKind.CUSTOMER_KIND_PERSON;
  const displayName = person
    ? `${req.person!.givenName.trim()} ${req.person!.familyName.trim()}`
    : req.business!.legalName.trim();
  const hash = createHashOf(key, req);
  return shard.db.transaction(async (tx) => {
    const now = new Date();
    const inserted = (await tx('customers')
      .insert({
        id,
        channel,
        external_reference: req.externalReference,
        create_hash: hash,
        kind: req.kind,
        status: CustomerStatus.CUSTOMER_STATUS_ACTIVE,
        kyc_status: KycStatus.KYC_STATUS_PENDING,
        risk_tier: INITIAL_RISK_TIER,
        display_name: displayName,
        search_name: foldName(displayName),
        given_name: req.person?.givenName.trim() ?? '',
        family_name: req.person?.familyName.trim() ?? '',
        date_of_birth: person ? req.person!.dateOfBirth : null,
        legal_name: req.business?.legalName.trim() ?? '',
        id_country: ident.country,
        id_hash: identityHash(key, ident.kind, ident.country, ident.number),
        id_last4: lastFour(ident.number),
        email: req.contact?.email ?? '',
        phone: req.contact?.phone ?? '',
        address: req.contact?.address ? JSON.stringify(PostalAddress.toJSON(req.contact.address)) : null,
        created_at: now,
        updated_at: now,
      })
      .onConflict('id')
      .ignore()
      .returning(tx.raw(CUSTOMER_COLUMNS))) as CustomerRow[];
    if (inserted.length) {
      const customer = customerToProto(inserted[0]!, shard.index);
      await writeEvents(tx, [customerCreated(customer, now)]);
      return { customer, replayed: false };
    }
    const existing = (await tx('customers').select(tx.raw(CUSTOMER_COLUMNS)).where('id', id).first()) as CustomerRow;
    if (existing.create_hash !== hash) {
      throw new DomainError(
        'ALREADY_EXISTS',
        'CUSTOMER_EXISTS_WITH_DIFFERENT_BODY',
        'external_reference: this channel created a customer with this reference and a different body',
        [{ field: 'external_reference', description: 'was used before with a different body' }],
        { customer_id: id },
      );
    }
    return { customer: customerToProto(existing, shard.index), replayed: true };
  });
}

export async function getCustomerRow(router: ShardRouter, id: string): Promise<{ row: CustomerRow; shard: Shard }> {
  const shard = shardOf(router, id);
  const row = (await shard
    .db('customers')
    .select(shard.db.raw(CUSTOMER_COLUMNS))
    .where('id', id.toLowerCase())
    .first()) as CustomerRow | undefined;
  if (!row) throw DomainError.notFound('customer_id', 'customer');
  return { row, shard };
}

export async function getCustomer(router: ShardRouter, id: string): Promise<Customer> {
  const { row, shard } = await getCustomerRow(router, id);
  return customerToProto(row, shard.index);
}

/** A change to one customer: the columns to set and the events that describe it. */
export interface Change {
  set: Record<string, unknown>;
  events: (after: Customer, at: Date) => OutboxEvent[];
}

/**
 * Locks the customer's row, asks decide() what to change (undefined: nothing, which is how a
 * repeated request stays idempotent), then writes the change, the version bump and the events in
 * the same transaction.
 */
export async function mutateCustomer(
  router: ShardRouter,
  id: string,
  decide: (row: CustomerRow) => Change | undefined,
): Promise<{ customer: Customer; changed: boolean }> {
  const shard = shardOf(router, id);
  return shard.db.transaction(async (tx) => {
    const row = (await tx('customers')
      .select(tx.raw(CUSTOMER_COLUMNS))
      .where('id', id.toLowerCase())
      .forUpdate()
      .first()) as CustomerRow | undefined;
    if (!row) throw DomainError.notFound('customer_id', 'customer');
    const change = decide(row);
    if (!change) return { customer: customerToProto(row, shard.index), changed: false };
    const now = new Date();
    const [after] = (await tx('customers')
      .where('id', row.id)
      .update({ ...change.set, version: tx.raw('version + 1'), updated_at: now })
      .returning(tx.raw(CUSTOMER_COLUMNS))) as CustomerRow[];
    const customer = customerToProto(after!, shard.index);
    await writeEvents(tx, change.events(customer, now));
    return { customer, changed: true };
  });
}

/**
 * Freeze, unfreeze and close call the account service between deciding and recording, so they
 * hold a lease on the customer for their duration (bounded by the caller's deadline): a second
 * one on the same customer gets ABORTED, reason CUSTOMER_BUSY, and retries. A lease left by a
 * crashed process lapses at its end time.
 */
export async function withLease<T>(
  router: ShardRouter,
  id: string,
  deadline: Date | undefined,
  fn: (leaseId: string) => Promise<T>,
): Promise<T> {
  const shard = shardOf(router, id);
  const leaseId = randomUUID();
  const ms = Math.max(1000, Math.min(120_000, (deadline?.getTime() ?? Date.now() + 30_000) - Date.now())) + 1000;
  const taken = await shard
    .db('customers')
    .where('id', id.toLowerCase())
    .andWhere((q) => q.whereNull('lease_until').orWhere('lease_until', '<', shard.db.raw('now()')))
    .update({ lease_id: leaseId, lease_until: shard.db.raw('now() + make_interval(secs => ?)', [ms / 1000]) });
  if (!taken) {
    await getCustomerRow(router, id); // NOT_FOUND when there is no such customer
    throw new DomainError(
      'ABORTED',
      'CUSTOMER_BUSY',
      'customer_id: another freeze, unfreeze or close of this customer is in progress; retry',
    );
  }
  try {
    return await fn(leaseId);
  } finally {
    await shard
      .db('customers')
      .where({ id: id.toLowerCase(), lease_id: leaseId })
      .update({ lease_id: null, lease_until: null });
  }
}

/** Inside decide(): the lease must still be this operation's. */
export function requireLease(row: CustomerRow, leaseId: string): void {
  if (row.lease_id !== leaseId) {
    throw new DomainError('ABORTED', 'CUSTOMER_BUSY', 'customer_id: the operation lost its lease; retry');
  }
}
