// Catalog events, written to the outbox in the transaction of the change they describe.
import { newEventId, subjectOf, toTimestamp, type OutboxEvent } from '@corebank/kit';
import { ProductVersionChanged } from '@corebank/kit/gen/corebank/v1/events';
import type { ProductVersion } from '@corebank/kit/gen/corebank/v1/product';

export const DOMAIN = 'product';

export const SUBJECTS = {
  productCreated: subjectOf(DOMAIN, 'product_created'),
  versionCreated: subjectOf(DOMAIN, 'version_created'),
  versionUpdated: subjectOf(DOMAIN, 'version_updated'),
  versionPublished: subjectOf(DOMAIN, 'version_published'),
  versionRetired: subjectOf(DOMAIN, 'version_retired'),
} as const;

export function productEvent(subject: string, product: ProductVersion, at: Date): OutboxEvent {
  const meta = { eventId: newEventId(), occurredAt: toTimestamp(at), shard: 0 };
  return { id: meta.eventId, subject, payload: ProductVersionChanged.encode({ meta, product }).finish() };
}
