// Identity numbers (a person's national id, a business's registration number): shape rules per
// issuing country, and the only form in which they are kept, a keyed hash plus the last four
// characters. Nothing here ever puts the number itself into an error, a log line or a row.
//
// The rule, stated once:
//   1. Normalise: upper-case, remove spaces, hyphens, dots and slashes.
//   2. If the issuing country has a rule below, the number must match it (pattern and, where the
//      scheme has one, its check digit).
//   3. Otherwise the generic rule applies: persons 5 to 20 letters or digits with at least one
//      digit; businesses 4 to 20 letters or digits.
import { createHmac } from 'node:crypto';

/** ISO 3166-1 alpha-2, every officially assigned code. */
export const COUNTRIES: ReadonlySet<string> = new Set(
  `AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
   CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
   FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE
   JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO
   MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
   PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM
   TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW`
    .split(/\s+/)
    .filter(Boolean),
);

export const isCountry = (code: string): boolean => COUNTRIES.has(code);

export type IdentityKind = 'person' | 'business';

export const normalizeIdentity = (raw: string): string => raw.toUpperCase().replace(/[\s\-./]/g, '');

interface Rule {
  /** What the number must look like, for the error (never the number itself). */
  describe: string;
  test: (n: string) => boolean;
}

const digits = (s: string) => [...s].map(Number);

/** ISO 7064 MOD 11,10 (German tax identification number). */
function mod11_10(n: string): boolean {
  let product = 10;
  const d = digits(n);
  for (let i = 0; i < d.length - 1; i++) {
    let sum = (d[i]! + product) % 10;
    if (sum === 0) sum = 10;
    product = (sum * 2) % 11;
  }
  const check = (11 - product) % 10;
  return check === d[d.length - 1];
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';

function spanishId(n: string): boolean {
  const nie = /^([XYZ])(\d{7})([A-Z])$/.exec(n);
  const dni = /^(\d{8})([A-Z])$/.exec(n);
  if (nie) return DNI_LETTERS[Number(`${'XYZ'.indexOf(nie[1]!)}${nie[2]}`) % 23] === nie[3];
  if (dni) return DNI_LETTERS[Number(dni[1]) % 23] === dni[2];
  return false;
}

/** Dutch BSN: the "elfproef" (9, 8, ..., 2, -1 weights, sum divisible by 11). */
function bsn(n: string): boolean {
  if (!/^\d{9}$/.test(n)) return false;
  const d = digits(n);
  const sum = d.slice(0, 8).reduce((s, x, i) => s + x * (9 - i), 0) - d[8]!;
  return sum % 11 === 0 && n !== '000000000';
}

/** Chinese resident identity card: 17 digits and an ISO 7064 MOD 11-2 check character. */
function chineseResidentId(n: string): boolean {
  if (!/^\d{17}[\dX]$/.test(n)) return false;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = digits(n.slice(0, 17)).reduce((s, x, i) => s + x * w[i]!, 0);
  return '10X98765432'[sum % 11] === n[17];
}

const USCC_CHARS = '0123456789ABCDEFGHJKLMNPQRTUWXY';

/** Chinese unified social credit code (GB 32100-2015): 18 characters, the last a check character. */
function uscc(n: string): boolean {
  if (!/^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/.test(n)) return false;
  const w = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  const sum = [...n.slice(0, 17)].reduce((s, c, i) => s + USCC_CHARS.indexOf(c) * w[i]!, 0);
  return USCC_CHARS[(31 - (sum % 31)) % 31] === n[17];
}

function ssn(n: string): boolean {
  const m = /^(\d{3})(\d{2})(\d{4})$/.exec(n);
  return !!m && m[1] !== '000' && m[1] !== '666' && !m[1]!.startsWith('9') && m[2] !== '00' && m[3] !== '0000';
}

const PERSON_RULES: Record<string, Rule> = {
  DE: {
    describe: 'a German tax identification number: 11 digits, not starting with 0, with a valid check digit',
    test: (n) => /^[1-9]\d{10}$/.test(n) && mod11_10(n),
  },
  ES: {
    describe: 'a Spanish DNI (8 digits and a check letter) or NIE (X, Y or Z, 7 digits, check letter)',
    test: spanishId,
  },
  NL: { describe: 'a Dutch BSN: 9 digits passing the eleven test', test: bsn },
  GB: {
    describe: 'a UK National Insurance number: two letters, six digits, A to D',
    test: (n) =>
      /^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$/.test(n) &&
      !['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ'].includes(n.slice(0, 2)),
  },
  US: {
    describe: 'a US Social Security number: 9 digits (area not 000, 666 or 9xx; group and serial not zero)',
    test: ssn,
  },
  CN: { describe: 'a Chinese resident identity number: 17 digits and a check digit or X', test: chineseResidentId },
  IT: {
    describe: 'an Italian codice fiscale: 16 letters and digits in the official layout',
    test: (n) => /^[A-Z]{6}[\dLMNP-V]{2}[ABCDEHLMPRST][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z]$/.test(n),
  },
};

const BUSINESS_RULES: Record<string, Rule> = {
  GB: {
    describe: 'a UK company number: 8 digits, or two letters and 6 digits',
    test: (n) => /^(\d{8}|[A-Z]{2}\d{6})$/.test(n),
  },
  DE: {
    describe: 'a German commercial register number: HRA, HRB, GnR, PR or VR, 1 to 6 digits, optional letter',
    test: (n) => /^(HRA|HRB|GNR|PR|VR)\d{1,6}[A-Z]?$/.test(n),
  },
  NL: { describe: 'a Dutch KvK number: 8 digits', test: (n) => /^\d{8}$/.test(n) },
  US: {
    describe: 'a US employer identification number: 9 digits, prefix not 00',
    test: (n) => /^(?!00)\d{9}$/.test(n),
  },
  CN: { describe: 'a Chinese unified social credit code: 18 characters with a valid check character', test: uscc },
};

const GENERIC: Record<IdentityKind, Rule> = {
  person: {
    describe: '5 to 20 letters or digits, at least one digit',
    test: (n) => /^[A-Z0-9]{5,20}$/.test(n) && /\d/.test(n),
  },
  business: { describe: '4 to 20 letters or digits', test: (n) => /^[A-Z0-9]{4,20}$/.test(n) },
};

export function identityRule(kind: IdentityKind, country: string): Rule {
  return (kind === 'person' ? PERSON_RULES : BUSINESS_RULES)[country] ?? GENERIC[kind];
}

/**
 * The problem with a number, or undefined when it has the right shape. The description says what
 * was expected, never what was given.
 */
export function identityProblem(kind: IdentityKind, country: string, raw: string): string | undefined {
  if (!raw) return 'is required';
  if (raw.length > 64) return 'is too long';
  const rule = identityRule(kind, country);
  return rule.test(normalizeIdentity(raw)) ? undefined : `is not ${rule.describe}`;
}

/** Keyed hash of a (normalised) number: HMAC-SHA256 over kind, country and number, hex. */
export function identityHash(key: Uint8Array, kind: IdentityKind, country: string, raw: string): string {
  return createHmac('sha256', key)
    .update(`${kind}|${country}|${normalizeIdentity(raw)}`)
    .digest('hex');
}

export const lastFour = (raw: string): string => normalizeIdentity(raw).slice(-4);
