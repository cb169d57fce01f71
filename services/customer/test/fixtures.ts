// Valid requests to start from; each test changes what it is about.
import { randomInt, randomUUID } from 'node:crypto';
import {
  CustomerKind,
  type Business,
  type CreateCustomerRequest,
  type Person,
} from '@corebank/kit/gen/corebank/v1/customer';

/** A number of the generic shape (FR has no country rule): 12 random digits. */
export const genericId = (): string => Array.from({ length: 12 }, () => randomInt(10)).join('');

export function personRequest(
  o: Partial<Omit<CreateCustomerRequest, 'person'>> & { person?: Partial<Person> } = {},
): CreateCustomerRequest {
  const { person, ...rest } = o;
  return {
    externalReference: `ref-${randomUUID()}`,
    kind: CustomerKind.CUSTOMER_KIND_PERSON,
    person: {
      givenName: 'Ada',
      familyName: 'Lovelace',
      dateOfBirth: '1985-12-10',
      nationalIdCountry: 'FR',
      nationalId: genericId(),
      nationalIdLast4: '',
      ...person,
    },
    contact: {
      email: 'ada@example.org',
      phone: '+4930123456',
      address: { lines: ['Unter den Linden 1'], city: 'Berlin', postalCode: '10117', region: '', country: 'DE' },
    },
    ...rest,
  };
}

export function businessRequest(
  o: Partial<Omit<CreateCustomerRequest, 'business'>> & { business?: Partial<Business> } = {},
): CreateCustomerRequest {
  const { business, ...rest } = o;
  return {
    externalReference: `ref-${randomUUID()}`,
    kind: CustomerKind.CUSTOMER_KIND_BUSINESS,
    business: {
      legalName: 'Analytical Engines Ltd',
      registrationCountry: 'GB',
      registrationNumber: String(randomInt(10_000_000, 99_999_999)),
      registrationNumberLast4: '',
      ...business,
    },
    contact: { email: 'office@engines.example', phone: '', address: undefined },
    ...rest,
  };
}
