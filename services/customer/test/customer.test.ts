// The customer service on one shard and on three: onboarding (idempotent by the channel's
// reference), validation, contact updates, KYC, risk tier, search across shards, authorisation,
// identity numbers kept only as keyed hashes, and an event for every change.
// (Freeze, unfreeze and close, which call the account service, are in lifecycle.test.ts.)
import { randomUUID } from 'node:crypto';
import { streamName } from '@corebank/kit';
import {
  CustomerKind,
  CustomerStatus as S,
  KycStatus as K,
  RiskTier,
  Customer,
} from '@corebank/kit/gen/corebank/v1/customer';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRpcError } from '../../account/test/helpers.js';
import { SUBJECTS } from '../src/events.js';
import { foldName } from '../src/proto.js';
import { customerIdFor } from '../src/store.js';
import { businessRequest, genericId, personRequest } from './fixtures.js';
import { CUSTOMER_SCOPES, eventsOf, rowCounts, startCustomers, type TestCustomers } from './harness.js';

describe.each([1, 3])('customers on %i shard(s)', (shards) => {
  let t: TestCustomers;
  beforeAll(async () => {
    t = await startCustomers(shards);
  });
  afterAll(async () => t?.stop());

  const create = async (req = personRequest()) => (await t.client.createCustomer(req)).customer!;

  describe('onboarding', () => {
    it('creates an ACTIVE person with KYC PENDING on its home shard, with a customer_created event', async () => {
      const req = personRequest();
      const res = await t.client.createCustomer(req);
      const c = res.customer!;
      expect(res.replayed).toBe(false);
      expect(c.id).toBe(customerIdFor('test', req.externalReference));
      expect(c).toMatchObject({
        kind: CustomerKind.CUSTOMER_KIND_PERSON,
        status: S.CUSTOMER_STATUS_ACTIVE,
        kycStatus: K.KYC_STATUS_PENDING,
        riskTier: RiskTier.RISK_TIER_MEDIUM,
        channel: 'test',
        externalReference: req.externalReference,
        displayName: 'Ada Lovelace',
        shard: t.app.router.byCustomer(c.id).index,
        version: 1n,
      });
      expect(c.person).toEqual({
        ...req.person,
        nationalId: '',
        nationalIdLast4: req.person!.nationalId.slice(-4),
      });
      expect(c.contact).toEqual(req.contact);
      expect((await t.client.getCustomer({ customerId: c.id })).customer).toEqual(c);
      const events = await eventsOf(t.app, c.id);
      expect(events.map((e) => e.subject)).toEqual([SUBJECTS.created]);
      // Events carry the customer without contact details.
      expect(events[0]!.customer).toEqual({ ...c, contact: undefined });
    });

    it('creates a business', async () => {
      const req = businessRequest({ business: { registrationNumber: 'SC 123456', registrationCountry: 'GB' } });
      const c = await create(req);
      expect(c.kind).toBe(CustomerKind.CUSTOMER_KIND_BUSINESS);
      expect(c.business).toEqual({
        legalName: 'Analytical Engines Ltd',
        registrationCountry: 'GB',
        registrationNumber: '',
        registrationNumberLast4: '3456',
      });
      expect(c.person).toBeUndefined();
      expect(c.displayName).toBe('Analytical Engines Ltd');
    });

    it('is idempotent by the channel and its external reference', async () => {
      const req = personRequest();
      const first = await t.client.createCustomer(req);
      const again = await t.client.createCustomer(req);
      expect(again.replayed).toBe(true);
      expect(again.customer).toEqual(first.customer);
      expect((await eventsOf(t.app, first.customer!.id)).length).toBe(1);

      // The same reference with a different body is refused, and changes nothing.
      const before = await rowCounts(t.app);
      for (const changed of [
        { ...req, contact: { ...req.contact!, email: 'other@example.org' } },
        { ...req, person: { ...req.person!, nationalId: genericId() } },
        { ...req, person: { ...req.person!, givenName: 'Augusta' } },
      ]) {
        const err = await expectRpcError(
          t.client.createCustomer(changed),
          status.ALREADY_EXISTS,
          'external_reference',
          'CUSTOMER_EXISTS_WITH_DIFFERENT_BODY',
        );
        expect(err.message).not.toContain(changed.person!.nationalId);
      }
      expect(await rowCounts(t.app)).toEqual(before);

      // The identity number's formatting is not part of the body.
      const spaced = {
        ...req,
        person: { ...req.person!, nationalId: req.person!.nationalId.replace(/(\d{4})/g, '$1 ') },
      };
      expect((await t.client.createCustomer(spaced)).replayed).toBe(true);

      // Another channel's reference is another customer.
      const other = t.clientWith(await t.token(CUSTOMER_SCOPES, undefined, 'teller'));
      const theirs = await other.createCustomer(req);
      expect(theirs.replayed).toBe(false);
      expect(theirs.customer!.id).not.toBe(first.customer!.id);
      expect(theirs.customer!.channel).toBe('teller');
    });

    it('keeps a replay working after the contact changed', async () => {
      const req = personRequest();
      const c = await create(req);
      await t.client.updateContact({
        customerId: c.id,
        contact: { email: 'new@example.org', phone: '' },
        updateMask: ['email'],
        expectedVersion: 0n,
      });
      const again = await t.client.createCustomer(req);
      expect(again.replayed).toBe(true);
      expect(again.customer!.contact!.email).toBe('new@example.org');
    });

    const invalid: [string, () => Parameters<TestCustomers['client']['createCustomer']>[0], string][] = [
      ['external_reference', () => personRequest({ externalReference: '' }), 'is required'],
      ['external_reference', () => personRequest({ externalReference: 'x'.repeat(129) }), 'at most 128'],
      ['kind', () => personRequest({ kind: CustomerKind.CUSTOMER_KIND_UNSPECIFIED }), 'CUSTOMER_KIND_PERSON'],
      ['person', () => ({ ...personRequest(), person: undefined }), 'is required for a PERSON'],
      ['business', () => ({ ...personRequest(), business: businessRequest().business }), 'must not be set'],
      ['person', () => ({ ...businessRequest(), person: personRequest().person }), 'must not be set'],
      ['business', () => ({ ...businessRequest(), business: undefined }), 'is required for a BUSINESS'],
      ['person.given_name', () => personRequest({ person: { givenName: ' ' } }), 'is required'],
      ['person.family_name', () => personRequest({ person: { familyName: 'x'.repeat(101) } }), 'at most 100'],
      ['person.family_name', () => personRequest({ person: { familyName: 'Love\u0000lace' } }), 'control characters'],
      ['person.date_of_birth', () => personRequest({ person: { dateOfBirth: '1990-02-30' } }), 'not a calendar date'],
      ['person.date_of_birth', () => personRequest({ person: { dateOfBirth: '10.12.1985' } }), 'YYYY-MM-DD'],
      ['person.date_of_birth', () => personRequest({ person: { dateOfBirth: '2999-01-01' } }), 'future'],
      ['person.national_id_country', () => personRequest({ person: { nationalIdCountry: 'XX' } }), 'ISO 3166-1'],
      ['person.national_id', () => personRequest({ person: { nationalId: '' } }), 'is required'],
      [
        'person.national_id',
        () => personRequest({ person: { nationalIdCountry: 'DE', nationalId: '86095742718' } }),
        'check digit',
      ],
      ['person.national_id', () => personRequest({ person: { nationalId: 'ABCDEFG' } }), 'at least one digit'],
      ['person.national_id_last4', () => personRequest({ person: { nationalIdLast4: '1234' } }), 'output only'],
      ['business.legal_name', () => businessRequest({ business: { legalName: '' } }), 'is required'],
      ['business.registration_country', () => businessRequest({ business: { registrationCountry: 'UK' } }), 'ISO'],
      [
        'business.registration_number',
        () => businessRequest({ business: { registrationNumber: '1234567' } }),
        'UK company number',
      ],
      [
        'contact.email',
        () => personRequest({ contact: { email: 'not-an-email', phone: '', address: undefined } }),
        'email',
      ],
      [
        'contact.phone',
        () => personRequest({ contact: { email: '', phone: '030123456', address: undefined } }),
        'E.164',
      ],
      [
        'contact.address.lines',
        () =>
          personRequest({
            contact: {
              email: '',
              phone: '',
              address: { lines: [], city: 'Berlin', postalCode: '', region: '', country: 'DE' },
            },
          }),
        '1 to 4 lines',
      ],
      [
        'contact.address.city',
        () =>
          personRequest({
            contact: {
              email: '',
              phone: '',
              address: { lines: ['x'], city: '', postalCode: '', region: '', country: 'DE' },
            },
          }),
        'is required',
      ],
      [
        'contact.address.country',
        () =>
          personRequest({
            contact: {
              email: '',
              phone: '',
              address: { lines: ['x'], city: 'y', postalCode: '', region: '', country: 'ZZ' },
            },
          }),
        'ISO 3166-1',
      ],
    ];

    it.each(invalid)('refuses a bad %s (%s) and writes nothing', async (field, make, description) => {
      const req = make();
      const before = await rowCounts(t.app);
      const err = await expectRpcError(
        t.client.createCustomer(req),
        status.INVALID_ARGUMENT,
        field,
        'INVALID_ARGUMENT',
      );
      expect(err.message).toContain(description);
      if (req.person?.nationalId) expect(err.message).not.toContain(req.person.nationalId);
      expect(await rowCounts(t.app)).toEqual(before);
    });

    it('names every bad field at once', async () => {
      const req = personRequest({
        externalReference: '',
        person: { givenName: '', nationalIdCountry: 'XX' },
        contact: { email: 'x', phone: 'y', address: undefined },
      });
      const err = await expectRpcError(t.client.createCustomer(req), status.INVALID_ARGUMENT);
      const { violations } = (await import('@corebank/kit')).errorDetails(err);
      expect(violations.map((v) => v.field).sort()).toEqual(
        [
          'contact.email',
          'contact.phone',
          'external_reference',
          'person.given_name',
          'person.national_id_country',
        ].sort(),
      );
    });
  });

  describe('identity numbers', () => {
    it('are stored only as a keyed hash and the last four characters, and never logged', async () => {
      const raw = '860 957 427 19';
      const normalised = '86095742719';
      const req = personRequest({ person: { nationalIdCountry: 'DE', nationalId: raw } });
      const c = await create(req);
      await t.client.createCustomer(req); // replay
      await expectRpcError(
        t.client.createCustomer({ ...req, person: { ...req.person!, givenName: 'Other' } }),
        status.ALREADY_EXISTS,
      );
      await expectRpcError(
        t.client.createCustomer(personRequest({ person: { nationalIdCountry: 'DE', nationalId: '86095742718' } })),
        status.INVALID_ARGUMENT,
      );
      const found = await t.client.listCustomers({
        identityNumber: raw,
        identityCountry: 'DE',
        namePrefix: '',
        status: 0,
        kycStatus: 0,
        kind: 0,
      });
      expect(found.customers.map((x) => x.id)).toContain(c.id);

      const shard = t.app.router.byCustomer(c.id);
      const { rows } = (await shard.db.raw(`select row_to_json(c)::text as j, id_hash from customers c where id = ?`, [
        c.id,
      ])) as { rows: { j: string; id_hash: string }[] };
      expect(rows[0]!.id_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(rows[0]!.j).toContain('"id_last4":"2719"');
      const everything = [
        ...(await Promise.all(
          t.app.router.shards.map(async (s) => {
            const a = await s.db.raw(`select string_agg(row_to_json(c)::text, '') as t from customers c`);
            const b = await s.db.raw(`select string_agg(encode(payload, 'escape'), '') as t from outbox`);
            return `${a.rows[0].t ?? ''}${b.rows[0].t ?? ''}`;
          }),
        )),
        JSON.stringify(Customer.toJSON(c)),
        ...t.logs,
      ].join('\n');
      expect(everything).not.toContain(normalised);
      expect(everything).not.toContain(raw);
      expect(everything).not.toContain('86095742718');
      // The capture works: the service did log these requests (debug lines for the refusals).
      expect(t.logs.some((l) => l.includes('CUSTOMER_EXISTS_WITH_DIFFERENT_BODY'))).toBe(true);
    });
  });

  describe('contact details', () => {
    it('updates the fields in the mask, once, with a customer_updated event naming them', async () => {
      const c = await create();
      const res = await t.client.updateContact({
        customerId: c.id,
        contact: { email: 'ada@analytical.example', phone: '+441234567890', address: undefined },
        updateMask: ['email'],
        expectedVersion: 0n,
      });
      expect(res.changed).toBe(true);
      expect(res.customer!.contact).toEqual({ ...c.contact, email: 'ada@analytical.example' });
      expect(res.customer!.version).toBe(2n);
      const again = await t.client.updateContact({
        customerId: c.id,
        contact: { email: 'ada@analytical.example', phone: '', address: undefined },
        updateMask: ['email'],
        expectedVersion: 0n,
      });
      expect(again.changed).toBe(false);
      expect(again.customer!.version).toBe(2n);

      // No mask: all three are replaced (here the address is removed).
      const all = await t.client.updateContact({
        customerId: c.id,
        contact: { email: 'ada@analytical.example', phone: '+441234567890', address: undefined },
        updateMask: [],
        expectedVersion: 0n,
      });
      expect(all.customer!.contact).toEqual({ email: 'ada@analytical.example', phone: '+441234567890' });
      const events = await eventsOf(t.app, c.id);
      expect(events.map((e) => [e.subject, e.detail.changedFields])).toEqual([
        [SUBJECTS.created, undefined],
        [SUBJECTS.updated, ['email']],
        [SUBJECTS.updated, ['phone', 'address']],
      ]);
    });

    it('checks expected_version, the mask and the values, and writes nothing when refused', async () => {
      const c = await create();
      const contact = { email: 'x@example.org', phone: '', address: undefined };
      const before = await rowCounts(t.app);
      await expectRpcError(
        t.client.updateContact({ customerId: c.id, contact, updateMask: [], expectedVersion: 7n }),
        status.ABORTED,
        undefined,
        'VERSION_MISMATCH',
      );
      await expectRpcError(
        t.client.updateContact({ customerId: c.id, contact, updateMask: ['name'], expectedVersion: 0n }),
        status.INVALID_ARGUMENT,
        'update_mask[0]',
      );
      await expectRpcError(
        t.client.updateContact({
          customerId: c.id,
          contact: { ...contact, email: 'nope' },
          updateMask: ['email'],
          expectedVersion: 0n,
        }),
        status.INVALID_ARGUMENT,
        'contact.email',
      );
      await expectRpcError(
        t.client.updateContact({ customerId: 'not-an-id', contact, updateMask: [], expectedVersion: 0n }),
        status.INVALID_ARGUMENT,
        'customer_id',
      );
      await expectRpcError(
        t.client.updateContact({ customerId: randomUUID(), contact, updateMask: [], expectedVersion: 0n }),
        status.NOT_FOUND,
        'customer_id',
      );
      expect(await rowCounts(t.app)).toEqual(before);
      const ok = await t.client.updateContact({
        customerId: c.id,
        contact,
        updateMask: ['email'],
        expectedVersion: 1n,
      });
      expect(ok.changed).toBe(true);
    });
  });

  describe('KYC', () => {
    const submit = (id: string) => t.client.submitKyc({ customerId: id });
    const decide = (id: string, decision: K, reason = 'documents checked') =>
      t.client.decideKyc({ customerId: id, decision, reason });
    /** A fresh customer driven along legal transitions to the given KYC status. */
    const customerAt = async (k: K): Promise<Customer> => {
      const c = await create();
      if (k === K.KYC_STATUS_PENDING) return c;
      await submit(c.id);
      if (k === K.KYC_STATUS_SUBMITTED) return c;
      return (await decide(c.id, k)).customer!;
    };
    const apply = (id: string, to: K) => (to === K.KYC_STATUS_SUBMITTED ? submit(id) : decide(id, to));
    const states = [K.KYC_STATUS_PENDING, K.KYC_STATUS_SUBMITTED, K.KYC_STATUS_VERIFIED, K.KYC_STATUS_REJECTED];
    const legal = new Set([
      `${K.KYC_STATUS_PENDING}>${K.KYC_STATUS_SUBMITTED}`,
      `${K.KYC_STATUS_SUBMITTED}>${K.KYC_STATUS_VERIFIED}`,
      `${K.KYC_STATUS_SUBMITTED}>${K.KYC_STATUS_REJECTED}`,
      `${K.KYC_STATUS_REJECTED}>${K.KYC_STATUS_SUBMITTED}`,
    ]);
    // Every target an RPC can ask for (PENDING is only the start) from every state.
    const cases = states.flatMap((from) =>
      [K.KYC_STATUS_SUBMITTED, K.KYC_STATUS_VERIFIED, K.KYC_STATUS_REJECTED].map(
        (to) => [K[from], K[to], from, to] as const,
      ),
    );

    it.each(cases)('%s -> %s', async (_f, _t, from, to) => {
      const c = await customerAt(from);
      const eventsBefore = (await eventsOf(t.app, c.id)).length;
      if (from === to) {
        const res = await apply(c.id, to);
        expect(res.changed).toBe(false);
        expect((await eventsOf(t.app, c.id)).length).toBe(eventsBefore);
      } else if (legal.has(`${from}>${to}`)) {
        const res = await apply(c.id, to);
        expect(res.changed).toBe(true);
        expect(res.customer!.kycStatus).toBe(to);
        const events = await eventsOf(t.app, c.id);
        expect(events.length).toBe(eventsBefore + 1);
        expect(events.at(-1)!.subject).toBe(SUBJECTS.kycChanged);
        expect(events.at(-1)!.detail).toMatchObject({ from, to });
        expect(events.at(-1)!.customer.kycStatus).toBe(to);
      } else {
        const err = await expectRpcError(
          apply(c.id, to),
          status.FAILED_PRECONDITION,
          undefined,
          'ILLEGAL_KYC_TRANSITION',
        );
        const name = (k: K) => K[k].replace('KYC_STATUS_', '');
        expect(err.details).toContain(`from ${name(from)} to ${name(to)}`);
        expect((await t.client.getCustomer({ customerId: c.id })).customer!.kycStatus).toBe(from);
        expect((await eventsOf(t.app, c.id)).length).toBe(eventsBefore);
      }
    });

    it('allows resubmission after a rejection and records the reasons', async () => {
      const c = await customerAt(K.KYC_STATUS_REJECTED);
      expect((await t.client.getCustomer({ customerId: c.id })).customer!.kycReason).toBe('documents checked');
      await submit(c.id);
      const v = await decide(c.id, K.KYC_STATUS_VERIFIED, 'second look');
      expect(v.customer).toMatchObject({ kycStatus: K.KYC_STATUS_VERIFIED, kycReason: 'second look' });
      expect((await eventsOf(t.app, c.id)).map((e) => e.detail.to)).toEqual([
        undefined,
        K.KYC_STATUS_SUBMITTED,
        K.KYC_STATUS_REJECTED,
        K.KYC_STATUS_SUBMITTED,
        K.KYC_STATUS_VERIFIED,
      ]);
    });

    it('validates the decision and requires a reason for a rejection', async () => {
      const c = await customerAt(K.KYC_STATUS_SUBMITTED);
      await expectRpcError(decide(c.id, K.KYC_STATUS_PENDING), status.INVALID_ARGUMENT, 'decision');
      await expectRpcError(decide(c.id, K.KYC_STATUS_UNSPECIFIED), status.INVALID_ARGUMENT, 'decision');
      await expectRpcError(decide(c.id, K.KYC_STATUS_REJECTED, ''), status.INVALID_ARGUMENT, 'reason');
      await expectRpcError(decide(c.id, K.KYC_STATUS_VERIFIED, 'x'.repeat(501)), status.INVALID_ARGUMENT, 'reason');
      expect((await eventsOf(t.app, c.id)).length).toBe(2);
    });
  });

  describe('risk tier', () => {
    it('is set, idempotently, with a risk_tier_changed event', async () => {
      const c = await create();
      const res = await t.client.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_HIGH, reason: 'PEP' });
      expect(res).toMatchObject({ changed: true, customer: { riskTier: RiskTier.RISK_TIER_HIGH } });
      const again = await t.client.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_HIGH, reason: 'PEP' });
      expect(again.changed).toBe(false);
      await expectRpcError(
        t.client.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_UNSPECIFIED, reason: '' }),
        status.INVALID_ARGUMENT,
        'risk_tier',
      );
      await expectRpcError(
        t.client.setRiskTier({ customerId: c.id, riskTier: 9 as RiskTier, reason: '' }),
        status.INVALID_ARGUMENT,
        'risk_tier',
      );
      const events = await eventsOf(t.app, c.id);
      expect(events.map((e) => [e.subject, e.detail])).toEqual([
        [SUBJECTS.created, {}],
        [SUBJECTS.riskTierChanged, { from: RiskTier.RISK_TIER_MEDIUM, to: RiskTier.RISK_TIER_HIGH, reason: 'PEP' }],
      ]);
    });
  });

  describe('search', () => {
    const list = (o: Partial<Parameters<TestCustomers['client']['listCustomers']>[0]>) =>
      t.client.listCustomers({
        namePrefix: '',
        status: 0,
        kycStatus: 0,
        kind: 0,
        identityNumber: '',
        identityCountry: '',
        ...o,
      });

    async function all(o: Parameters<typeof list>[0], pageSize: number): Promise<Customer[]> {
      const out: Customer[] = [];
      let token = '';
      let pages = 0;
      do {
        const page = await list({ ...o, page: { pageSize, pageToken: token } });
        expect(page.customers.length).toBeLessThanOrEqual(pageSize);
        out.push(...page.customers);
        token = page.page!.nextPageToken;
        pages++;
        expect(pages).toBeLessThan(100);
      } while (token);
      return out;
    }

    it('pages through every shard in name order without losing or repeating anyone', async () => {
      const tag = `Qz${randomUUID().slice(0, 6)}`;
      const names = ['Émile', 'emma', 'Zoë', 'zoe', 'Ada', 'ada', 'Ünal', 'Bob', 'bo', 'Chen', 'Ørsted', 'Ye'];
      const created: Customer[] = [];
      for (const [i, given] of names.entries()) {
        for (let k = 0; k < 2; k++) {
          created.push(await create(personRequest({ person: { givenName: given, familyName: `${tag} ${i}` } })));
        }
      }
      // A family-name prefix is not a display-name prefix: search by the tag as a given name.
      const tagged: Customer[] = [];
      for (let i = 0; i < 9; i++) {
        tagged.push(await create(personRequest({ person: { givenName: `${tag}${i % 3}`, familyName: 'Lovelace' } })));
      }
      const expected = [...tagged].sort((a, b) => {
        const x = Buffer.compare(Buffer.from(foldName(a.displayName)), Buffer.from(foldName(b.displayName)));
        return x || (a.id < b.id ? -1 : 1);
      });
      for (const size of [1, 2, 4, 100]) {
        const got = await all({ namePrefix: tag.toLowerCase() }, size);
        expect(got.map((c) => c.id)).toEqual(expected.map((c) => c.id));
      }
      if (shards > 1) expect(new Set(tagged.map((c) => c.shard)).size).toBeGreaterThan(1);

      // Case and accents are folded: "zoe" finds Zoë and zoe.
      const zoes = (await all({ namePrefix: 'ZOE' }, 3)).filter((c) => c.displayName.includes(tag));
      expect(zoes.map((c) => c.person!.givenName).sort()).toEqual(['Zoë', 'Zoë', 'zoe', 'zoe']);
      expect(created.length).toBe(24);
    });

    it('filters by status, KYC status, kind and identity number', async () => {
      const tag = `Fx${randomUUID().slice(0, 6)}`;
      const a = await create(personRequest({ person: { givenName: tag, familyName: 'A' } }));
      const b = await create(personRequest({ person: { givenName: tag, familyName: 'B' } }));
      const biz = await create(businessRequest({ business: { legalName: `${tag} Ltd` } }));
      await t.client.submitKyc({ customerId: b.id });
      const ids = async (o: Parameters<typeof list>[0]) => (await all({ namePrefix: tag, ...o }, 2)).map((c) => c.id);
      expect(await ids({})).toEqual([a.id, b.id, biz.id]);
      expect(await ids({ kycStatus: K.KYC_STATUS_SUBMITTED })).toEqual([b.id]);
      expect(await ids({ kycStatus: K.KYC_STATUS_PENDING, kind: CustomerKind.CUSTOMER_KIND_PERSON })).toEqual([a.id]);
      expect(await ids({ kind: CustomerKind.CUSTOMER_KIND_BUSINESS })).toEqual([biz.id]);
      expect(await ids({ status: S.CUSTOMER_STATUS_ACTIVE })).toEqual([a.id, b.id, biz.id]);
      expect(await ids({ status: S.CUSTOMER_STATUS_FROZEN })).toEqual([]);
      const full = await t.client.getCustomer({ customerId: a.id });
      expect(full.customer!.person!.nationalId).toBe('');
    });

    it('validates filters, page size and page tokens', async () => {
      await expectRpcError(
        list({ page: { pageSize: 1001, pageToken: '' } }),
        status.INVALID_ARGUMENT,
        'page.page_size',
      );
      await expectRpcError(list({ status: 7 as S }), status.INVALID_ARGUMENT, 'status');
      await expectRpcError(list({ kycStatus: 9 as K }), status.INVALID_ARGUMENT, 'kyc_status');
      await expectRpcError(list({ identityNumber: '123456' }), status.INVALID_ARGUMENT, 'identity_country');
      await expectRpcError(
        list({ page: { pageSize: 1, pageToken: 'garbage' } }),
        status.INVALID_ARGUMENT,
        'page.page_token',
      );
      await create(personRequest({ person: { givenName: 'Tokenia' } }));
      await create(personRequest({ person: { givenName: 'Tokenia' } }));
      const first = await list({ namePrefix: 'tokenia', page: { pageSize: 1, pageToken: '' } });
      expect(first.page!.nextPageToken).not.toBe('');
      await expectRpcError(
        list({ namePrefix: 'other', page: { pageSize: 1, pageToken: first.page!.nextPageToken } }),
        status.INVALID_ARGUMENT,
        'page.page_token',
      );
    });
  });

  describe('authorisation', () => {
    it('lets a customer-bound token read and update only its own customer', async () => {
      const mine = await create();
      const theirs = await create();
      const bound = t.clientWith(await t.token(CUSTOMER_SCOPES, mine.id));
      expect((await bound.getCustomer({ customerId: mine.id })).customer!.id).toBe(mine.id);
      await expectRpcError(
        bound.getCustomer({ customerId: theirs.id }),
        status.PERMISSION_DENIED,
        undefined,
        'CUSTOMER_MISMATCH',
      );
      const contact = { email: 'me@example.org', phone: '', address: undefined };
      expect(
        (await bound.updateContact({ customerId: mine.id, contact, updateMask: ['email'], expectedVersion: 0n }))
          .changed,
      ).toBe(true);
      await expectRpcError(
        bound.updateContact({ customerId: theirs.id, contact, updateMask: ['email'], expectedVersion: 0n }),
        status.PERMISSION_DENIED,
        undefined,
        'CUSTOMER_MISMATCH',
      );
      expect((await bound.submitKyc({ customerId: mine.id })).changed).toBe(true);
      await expectRpcError(bound.submitKyc({ customerId: theirs.id }), status.PERMISSION_DENIED);
      await expectRpcError(
        bound.createCustomer(personRequest()),
        status.PERMISSION_DENIED,
        undefined,
        'CUSTOMER_TOKEN',
      );
      await expectRpcError(
        bound.listCustomers({
          namePrefix: '',
          status: 0,
          kycStatus: 0,
          kind: 0,
          identityNumber: '',
          identityCountry: '',
        }),
        status.PERMISSION_DENIED,
        undefined,
        'CUSTOMER_TOKEN',
      );
    });

    it('requires customers:read, customers:write and customers:admin per RPC', async () => {
      const c = await create();
      const reader = t.clientWith(await t.token(['customers:read']));
      const writer = t.clientWith(await t.token(['customers:read', 'customers:write']));
      expect((await reader.getCustomer({ customerId: c.id })).customer!.id).toBe(c.id);
      await expectRpcError(
        reader.createCustomer(personRequest()),
        status.PERMISSION_DENIED,
        undefined,
        'MISSING_SCOPE',
      );
      await expectRpcError(
        reader.submitKyc({ customerId: c.id }),
        status.PERMISSION_DENIED,
        undefined,
        'MISSING_SCOPE',
      );
      await writer.submitKyc({ customerId: c.id });
      for (const call of [
        () => writer.decideKyc({ customerId: c.id, decision: K.KYC_STATUS_VERIFIED, reason: '' }),
        () => writer.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_LOW, reason: '' }),
        () => writer.freezeCustomer({ customerId: c.id, reason: '' }),
        () => writer.unfreezeCustomer({ customerId: c.id, reason: '' }),
        () => writer.closeCustomer({ customerId: c.id, reason: '' }),
      ]) {
        await expectRpcError(call(), status.PERMISSION_DENIED, undefined, 'MISSING_SCOPE');
      }
      await expectRpcError(t.clientWith('').getCustomer({ customerId: c.id }), status.UNAUTHENTICATED);
    });
  });

  describe('lifecycle operations', () => {
    it('are refused with CUSTOMER_BUSY while another one holds the customer, before calling the account service', async () => {
      const c = await create();
      const shard = t.app.router.byCustomer(c.id);
      await shard
        .db('customers')
        .where('id', c.id)
        .update({ lease_id: randomUUID(), lease_until: shard.db.raw(`now() + interval '1 minute'`) });
      await expectRpcError(
        t.client.freezeCustomer({ customerId: c.id, reason: '' }),
        status.ABORTED,
        undefined,
        'CUSTOMER_BUSY',
      );
      await expectRpcError(
        t.client.closeCustomer({ customerId: c.id, reason: '' }),
        status.ABORTED,
        undefined,
        'CUSTOMER_BUSY',
      );
      expect((await t.client.getCustomer({ customerId: c.id })).customer!.status).toBe(S.CUSTOMER_STATUS_ACTIVE);
      await expectRpcError(
        t.client.freezeCustomer({ customerId: randomUUID(), reason: '' }),
        status.NOT_FOUND,
        'customer_id',
      );
    });
  });

  describe('events', () => {
    it('reach the customer stream with the event id as Nats-Msg-Id', async () => {
      const c = await create();
      await t.client.setRiskTier({ customerId: c.id, riskTier: RiskTier.RISK_TIER_LOW, reason: 'reviewed' });
      const ids = (await eventsOf(t.app, c.id)).map((e) => e.id);
      const until = Date.now() + 20_000;
      while (!(await eventsOf(t.app, c.id)).every((e) => e.sent)) {
        if (Date.now() > until) throw new Error('the relay did not publish the events');
        await new Promise((r) => setTimeout(r, 50));
      }
      // Both events were published: the stream holds the messages with our ids.
      for (const id of ids) {
        const found = await findMessage(t, id);
        expect(found, `event ${id} in the stream`).toBe(true);
      }
    });
  });
});

/** Whether the customer stream holds a message with this Nats-Msg-Id (scans from the end). */
async function findMessage(t: TestCustomers, msgId: string): Promise<boolean> {
  const { jsm } = t.app.nats;
  const info = await jsm.streams.info(streamName('customer'));
  for (let seq = info.state.last_seq; seq >= info.state.first_seq && seq > info.state.last_seq - 5000; seq--) {
    try {
      const m = await jsm.streams.getMessage(streamName('customer'), { seq });
      if (m?.header.get('Nats-Msg-Id') === msgId) return true;
    } catch {
      // deleted or purged sequence
    }
  }
  return false;
}
