// Identity-number shapes per country, the generic rule, and the keyed hash.
import { describe, expect, it } from 'vitest';
import { COUNTRIES, identityHash, identityProblem, lastFour, normalizeIdentity } from '../src/identity.js';

describe('identity numbers', () => {
  it('knows every ISO 3166-1 alpha-2 code', () => {
    expect(COUNTRIES.size).toBe(249);
    expect(COUNTRIES.has('DE')).toBe(true);
    expect(COUNTRIES.has('UK')).toBe(false);
  });

  it.each([
    ['DE', '86095742719'],
    ['DE', '65929970489'],
    ['ES', '12345678Z'],
    ['ES', 'X1234567L'],
    ['NL', '111222333'],
    ['GB', 'AB 12 34 56 C'],
    ['US', '123-45-6789'],
    ['CN', '11010519491231002X'],
    ['IT', 'RSSMRA85T10A562S'],
    ['FR', '1850578006084'],
    ['JP', 'ab12345'],
  ])('accepts a %s national id of the right shape', (country, id) => {
    expect(identityProblem('person', country, id)).toBeUndefined();
  });

  it.each([
    ['DE', '86095742718', 'check digit'],
    ['DE', '0609574271', '11 digits'],
    ['ES', '12345678A', 'check letter'],
    ['NL', '111222334', 'eleven test'],
    ['GB', 'GB123456A', 'National Insurance'],
    ['US', '666-45-6789', 'Social Security'],
    ['CN', '110105194912310021', 'check digit'],
    ['FR', 'ABCDEF', 'at least one digit'],
    ['FR', '123', '5 to 20'],
  ])('refuses a %s national id %s, saying what is expected', (country, id, expected) => {
    const problem = identityProblem('person', country, id);
    expect(problem).toContain(expected);
    expect(problem).not.toContain(normalizeIdentity(id));
  });

  it.each([
    ['GB', 'SC123456', true],
    ['GB', '01234567', true],
    ['GB', '1234567', false],
    ['DE', 'HRB 12345', true],
    ['DE', '12345', false],
    ['NL', '12345678', true],
    ['US', '12-3456789', true],
    ['US', '00-3456789', false],
    ['CN', '91350100M000100Y43', true],
    ['CN', '91350100M000100Y44', false],
    ['FR', '552 120 222', true],
    ['FR', 'AB', false],
  ])('%s registration number %s valid: %s', (country, id, ok) => {
    expect(identityProblem('business', country, id) === undefined).toBe(ok);
  });

  it('hashes with the key, over kind, country and the normalised number', () => {
    const key = Buffer.alloc(32, 1);
    const h = identityHash(key, 'person', 'DE', '86095742719');
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(identityHash(key, 'person', 'DE', '860 957 427 19')).toBe(h);
    expect(identityHash(Buffer.alloc(32, 2), 'person', 'DE', '86095742719')).not.toBe(h);
    expect(identityHash(key, 'business', 'DE', '86095742719')).not.toBe(h);
    expect(identityHash(key, 'person', 'AT', '86095742719')).not.toBe(h);
    expect(lastFour('86095742719')).toBe('2719');
  });
});
