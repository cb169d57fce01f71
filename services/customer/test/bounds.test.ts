// Every customer-service field is bounded to what its column holds: NUL and other control
// characters, over-long text and oversized repeated fields are INVALID_ARGUMENT naming the field,
// with a small error that does not echo the input, and nothing is written.
import { status } from '@grpc/grpc-js';
import { CustomerKind, CustomerStatus as S, KycStatus as K } from '@corebank/kit/gen/corebank/v1/customer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { personRequest } from './fixtures.js';
import { rowCounts, startCustomers, type TestCustomers } from './harness.js';

const MB = 'x'.repeat(1 << 20);

describe('customer service request bounds', () => {
  let t: TestCustomers;
  beforeAll(async () => {
    t = await startCustomers(1);
  });
  afterAll(async () => t?.stop());

  const small = (err: { details: string }) => {
    expect(err.details.length).toBeLessThan(400);
    expect(err.details).not.toContain('\u0000');
  };

  it('CreateCustomer: NUL in the email or a name, or 1 MB text, is INVALID_ARGUMENT and writes nothing', async () => {
    const before = await rowCounts(t.app);
    const base = personRequest();
    const cases: [ReturnType<typeof personRequest>, string][] = [
      [{ ...base, contact: { ...base.contact!, email: 'a\u0000@b.example' } }, 'contact.email'],
      [{ ...base, contact: { ...base.contact!, email: MB } }, 'contact.email'],
      [personRequest({ person: { givenName: 'A\u0000da' } }), 'person.given_name'],
      [personRequest({ person: { familyName: MB } }), 'person.family_name'],
      [personRequest({ externalReference: 'r\u0000' }), 'external_reference'],
      [personRequest({ person: { nationalId: MB } }), 'person.national_id'],
      [personRequest({ kind: 77 as CustomerKind }), 'kind'],
    ];
    for (const [req, field] of cases)
      small(await expectRpcError(t.client.createCustomer(req), status.INVALID_ARGUMENT, field));
    expect(await rowCounts(t.app)).toEqual(before);
  });

  it('ListCustomers: NUL in a filter, unknown enums and foreign page tokens are INVALID_ARGUMENT', async () => {
    const list = (o: object) =>
      t.client.listCustomers({
        namePrefix: '',
        status: 0,
        kycStatus: 0,
        kind: 0,
        identityNumber: '',
        identityCountry: '',
        ...o,
      });
    small(await expectRpcError(list({ namePrefix: 'a\u0000' }), status.INVALID_ARGUMENT, 'name_prefix'));
    small(await expectRpcError(list({ namePrefix: MB }), status.INVALID_ARGUMENT, 'name_prefix'));
    await expectRpcError(
      list({ identityNumber: 'x\u0000', identityCountry: 'FR' }),
      status.INVALID_ARGUMENT,
      'identity_number',
    );
    await expectRpcError(list({ status: -1 as S }), status.INVALID_ARGUMENT, 'status');
    await expectRpcError(list({ kycStatus: 99 as K }), status.INVALID_ARGUMENT, 'kyc_status');
    await t.client.createCustomer(personRequest({ person: { givenName: 'Pagina' } }));
    await t.client.createCustomer(personRequest({ person: { givenName: 'Pagina' } }));
    const first = await list({ namePrefix: 'pagina', page: { pageSize: 1, pageToken: '' } });
    const err = await expectRpcError(
      list({ namePrefix: 'pagin', page: { pageSize: 1, pageToken: first.page!.nextPageToken } }),
      status.INVALID_ARGUMENT,
      'page.page_token',
    );
    expect(err.details).toContain('is not a token for this query');
    for (const pageToken of [MB, '!!', Buffer.from('{"n":"a","i":"b"}').toString('base64url')]) {
      await expectRpcError(list({ page: { pageSize: 1, pageToken } }), status.INVALID_ARGUMENT, 'page.page_token');
    }
    const next = await list({ namePrefix: 'pagina', page: { pageSize: 1, pageToken: first.page!.nextPageToken } });
    expect(next.customers).toHaveLength(1);
  });

  it('UpdateContact: 10,000 update_mask entries are one violation; a reason holding NUL is refused', async () => {
    const c = (await t.client.createCustomer(personRequest())).customer!;
    const err = await expectRpcError(
      t.client.updateContact({ customerId: c.id, updateMask: Array(10_000).fill('email'), expectedVersion: 0n }),
      status.INVALID_ARGUMENT,
      'update_mask',
    );
    small(err);
    small(
      await expectRpcError(
        t.client.freezeCustomer({ customerId: c.id, reason: 'a\u0000b' }),
        status.INVALID_ARGUMENT,
        'reason',
      ),
    );
    small(await expectRpcError(t.client.getCustomer({ customerId: MB }), status.INVALID_ARGUMENT, 'customer_id'));
    expect((await t.client.getCustomer({ customerId: c.id })).customer!.status).toBe(S.CUSTOMER_STATUS_ACTIVE);
  });
});
