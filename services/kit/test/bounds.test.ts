// The kit's field bounds and page-token codec, without a database.
import { RiskTier } from '@corebank/kit/gen/corebank/v1/customer';
import { describe, expect, it } from 'vitest';
import {
  cursorInt,
  cursorUuid,
  decodePageToken,
  encodePageToken,
  enumValue,
  int64,
  readPage,
  repeated,
  text,
  timestampField,
  uint32,
  uuid,
  Violations,
} from '../src/index.js';

const check = (f: (v: Violations) => unknown) => {
  const v = new Violations();
  const result = f(v);
  return { result, list: v.list };
};

describe('bounds', () => {
  it('text: required, length, control characters; never echoes the value', () => {
    expect(check((v) => text(v, 'f', 'ok', { max: 5 })).list).toEqual([]);
    expect(check((v) => text(v, 'f', '', { max: 5 })).result).toBe(false);
    expect(check((v) => text(v, 'f', '', { max: 5, required: true })).list).toEqual([
      { field: 'f', description: 'is required' },
    ]);
    expect(check((v) => text(v, 'f', 'toolong', { max: 5 })).list[0]!.description).toBe('must be at most 5 characters');
    for (const bad of ['a\u0000b', '\u0000', 'x\u001b', 'x\u007f', '\u0085']) {
      const { list } = check((v) => text(v, 'f', bad, { max: 50 }));
      expect(list).toEqual([{ field: 'f', description: 'must not contain control characters' }]);
    }
    expect(check((v) => text(v, 'f', 'a\nb\tc', { max: 50, multiline: true })).list).toEqual([]);
    expect(check((v) => text(v, 'f', 'a\nb\u0000', { max: 50, multiline: true })).list).toHaveLength(1);
    expect(check((v) => text(v, 'f', 'a\nb', { max: 50 })).list).toHaveLength(1);
    const secret = 'x'.repeat(1 << 20);
    expect(JSON.stringify(check((v) => text(v, 'f', secret, { max: 10 })).list)).not.toContain('xxxxxxxxxxx');
    expect(check((v) => text(v, 'f', 'AB-1', { max: 10, pattern: /^[a-z]+$/, shape: 'lower-case' })).list).toEqual([
      { field: 'f', description: 'must be lower-case' },
    ]);
  });

  it('integers: the column ranges', () => {
    expect(check((v) => uint32(v, 'n', 2 ** 31 - 1)).list).toEqual([]);
    expect(check((v) => uint32(v, 'n', 2 ** 31)).list).toEqual([
      { field: 'n', description: 'must be 0 to 2147483647' },
    ]);
    expect(check((v) => uint32(v, 'n', 5, { max: 3 })).list[0]!.description).toBe('must be 0 to 3');
    expect(check((v) => uint32(v, 'n', 0, { required: true })).list[0]!.description).toBe('is required');
    expect(check((v) => int64(v, 'a', -1n, { min: 0n })).list).toHaveLength(1);
    expect(check((v) => int64(v, 'a', 2n ** 63n - 1n, { min: 0n })).list).toEqual([]);
  });

  it('uuids, enums, repeated fields and timestamps', () => {
    expect(check((v) => uuid(v, 'id', 'AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA')).result).toBe(
      'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa',
    );
    expect(check((v) => uuid(v, 'id', 'nope')).list).toEqual([{ field: 'id', description: 'is not a UUID' }]);
    expect(check((v) => uuid(v, 'id', '', { required: false })).list).toEqual([]);
    expect(check((v) => enumValue(v, 'e', RiskTier.RISK_TIER_LOW, RiskTier)).list).toEqual([]);
    for (const bad of [0, -1, 99, 2 ** 31 - 1]) {
      expect(check((v) => enumValue(v, 'e', bad, RiskTier)).list).toHaveLength(1);
    }
    expect(check((v) => enumValue(v, 'e', 0, RiskTier, { allowUnspecified: true })).list).toEqual([]);
    expect(
      check((v) => enumValue(v, 'e', RiskTier.RISK_TIER_HIGH, RiskTier, { allowed: [RiskTier.RISK_TIER_LOW] })).list,
    ).toHaveLength(1);
    expect(check((v) => repeated(v, 'r', Array(10_000).fill(0), { max: 100 })).list).toEqual([
      { field: 'r', description: 'must hold at most 100 elements' },
    ]);
    expect(check((v) => timestampField(v, 't', { seconds: 0n, nanos: 0 })).list).toEqual([]);
    expect(check((v) => timestampField(v, 't', { seconds: 2n ** 63n - 1n, nanos: 0 })).list).toHaveLength(1);
    expect(check((v) => timestampField(v, 't', { seconds: 0n, nanos: -1 })).list).toHaveLength(1);
  });
});

describe('page tokens', () => {
  const q = { rpc: 'ListThings', filters: ['owner-1', 3n] };
  const parse = ([id, ...rest]: string[]) => (rest.length ? undefined : cursorUuid(id));
  const id = '0b0e3c1e-8f8a-4d7a-9c5c-1a2b3c4d5e6f';

  it('round-trips a cursor for the same query', () => {
    const token = encodePageToken(q, [id]);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(check((v) => decodePageToken(v, token, q, parse))).toEqual({ result: id, list: [] });
    expect(check((v) => decodePageToken(v, '', q, parse))).toEqual({ result: undefined, list: [] });
  });

  it('refuses a token of another query, RPC or filter', () => {
    const token = encodePageToken(q, [id]);
    for (const other of [
      { rpc: 'ListThings', filters: ['owner-2', 3n] },
      { rpc: 'ListOthers', filters: ['owner-1', 3n] },
    ]) {
      expect(check((v) => decodePageToken(v, token, other, parse)).list).toEqual([
        { field: 'page.page_token', description: 'is not a token for this query' },
      ]);
    }
  });

  it('refuses malformed tokens without echoing them', () => {
    const forged = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    for (const bad of [
      'garbage!',
      '%%%',
      'x'.repeat(5000),
      Buffer.from('not json').toString('base64url'),
      forged([2, 'x', id]),
      forged({ n: 1 } as unknown as unknown[]),
      forged([1, 'fp', 5]),
      encodePageToken(q, ['not-a-uuid']),
      encodePageToken(q, [id, 'extra']),
    ]) {
      const { result, list } = check((v) => decodePageToken(v, bad, q, parse));
      expect(result).toBeUndefined();
      expect(list).toHaveLength(1);
      expect(list[0]!.field).toBe('page.page_token');
      expect(list[0]!.description).not.toContain('xxxx');
    }
  });

  it('readPage checks size and token together; cursor parts are bounded', () => {
    const { result, list } = check((v) => readPage(v, { pageSize: 5000, pageToken: 'bad!' }, q, parse));
    expect(list.map((x) => x.field)).toEqual(['page.page_size', 'page.page_token']);
    expect((result as { after: unknown }).after).toBeUndefined();
    expect(cursorInt('12')).toBe(12n);
    expect(cursorInt('99999999999999999999')).toBeUndefined();
    expect(cursorInt('-1')).toBeUndefined();
    expect(cursorUuid('ABC')).toBeUndefined();
  });
});
