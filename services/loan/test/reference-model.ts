// A small reference model of Fineract's cumulative schedule, written apart from the engine and in another style:
// every quantity is an exact fraction of bigints (Q), dates are closed-form (k months after the seed, clamped), and
// the 12-significant-digit rounding of rates is found by comparing fractions with powers of ten. The property tests
// check the engine against it period by period.
import type { ScheduleTerms } from '@corebank/loan/schedule';

export class Q {
  readonly n: bigint;
  readonly d: bigint;
  constructor(n: bigint, d = 1n) {
    if (d === 0n) throw new RangeError('zero denominator');
    if (d < 0n) {
      n = -n;
      d = -d;
    }
    const g = gcd(n < 0n ? -n : n, d);
    this.n = n / g;
    this.d = d / g;
  }
  add(o: Q): Q {
    return new Q(this.n * o.d + o.n * this.d, this.d * o.d);
  }
  sub(o: Q): Q {
    return new Q(this.n * o.d - o.n * this.d, this.d * o.d);
  }
  mul(o: Q): Q {
    return new Q(this.n * o.n, this.d * o.d);
  }
  div(o: Q): Q {
    return new Q(this.n * o.d, this.d * o.n);
  }
  cmp(o: Q): number {
    const x = this.n * o.d - o.n * this.d;
    return x < 0n ? -1 : x > 0n ? 1 : 0;
  }
  /** Nearest integer, ties to even. */
  roundHalfEven(): bigint {
    const floor = this.n >= 0n ? this.n / this.d : -((-this.n + this.d - 1n) / this.d);
    const twiceFraction = new Q(this.n - floor * this.d, this.d).mul(new Q(2n));
    const c = twiceFraction.cmp(new Q(1n));
    if (c > 0 || (c === 0 && floor % 2n !== 0n)) return floor + 1n;
    return floor;
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

const TEN = new Q(10n);

/** q rounded half-even to 12 significant digits (q >= 0). */
export function sig12(q: Q): Q {
  if (q.n === 0n) return q;
  let scale = new Q(1n); // q * scale lands in [1e11, 1e12)
  const low = new Q(10n ** 11n);
  const high = new Q(10n ** 12n);
  while (q.mul(scale).cmp(low) < 0) scale = scale.mul(TEN);
  while (q.mul(scale).cmp(high) >= 0) scale = scale.div(TEN);
  return new Q(q.mul(scale).roundHalfEven()).div(scale);
}

interface Day {
  y: number;
  m: number; // 1..12
  d: number;
}
const toDay = (s: string): Day => {
  const [y, m, d] = s.split('-').map(Number) as [number, number, number];
  return { y, m, d };
};
const lastDay = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();
const monthsAfter = (a: Day, k: number): Day => {
  const t = a.y * 12 + a.m - 1 + k;
  const y = Math.floor(t / 12);
  const m = t - 12 * y + 1;
  return { y, m, d: Math.min(a.d, lastDay(y, m)) };
};
const ms = (a: Day) => Date.UTC(a.y, a.m - 1, a.d);
const daysAfter = (a: Day, k: number): Day => {
  const t = new Date(ms(a) + k * 86_400_000);
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
};
const gap = (a: Day, b: Day) => (ms(b) - ms(a)) / 86_400_000;
const iso = (a: Day) => `${a.y}-${String(a.m).padStart(2, '0')}-${String(a.d).padStart(2, '0')}`;

export interface ModelPeriod {
  due: string;
  principal: bigint;
  interest: bigint;
}

/** The model's schedule, or the reason Fineract refuses it. */
export type ModelResult = { ok: true; periods: ModelPeriod[]; instalment?: bigint } | { ok: false; reason: string };

export function model(t: ScheduleTerms): ModelResult {
  const n = t.numberOfPeriods;
  const P = t.principal;
  const weekly = t.period === 'weekly';
  const daily = (t.interestCalculationPeriod ?? 'daily') === 'daily';
  const gP = t.scheduleType === 'bullet' ? n - 1 : (t.graceOnPrincipalPeriods ?? 0);
  const gI = t.graceOnInterestPeriods ?? 0;
  const gDeferred = (t.graceOnInterestKind ?? 'deferred') === 'deferred' ? gI : 0;
  const gWaived = gI - gDeferred;
  const m = t.instalmentMultiple;

  // Dates, closed form.
  const start = toDay(t.startDate);
  const anchor = t.firstDueDate ? toDay(t.firstDueDate) : start;
  const shift = t.firstDueDate ? 0 : 1;
  const due = Array.from({ length: n }, (_, k) =>
    weekly ? daysAfter(anchor, 7 * (k + shift)) : monthsAfter(anchor, k + shift),
  );
  const ideal = weekly ? daysAfter(due[0] as Day, -7) : monthsAfter(due[0] as Day, -1);

  // Rates.
  const yearDays = { 'ACT/365F': 365n, 'ACT/360': 360n, 'ACT/364': 364n, '30/360': 360n }[t.dayCount];
  const perYear = daily ? yearDays : weekly ? 52n : 12n;
  const annual = new Q(t.annualRate.units, 10n ** 10n);
  const unit = sig12(sig12(annual.div(new Q(perYear))).div(new Q(100n)));
  const thirty = !weekly && t.dayCount === '30/360';
  const rateFor = (days: number) => (daily ? sig12(unit.mul(new Q(BigInt(thirty ? 30 : days)))) : unit);
  const pmtRate = daily ? sig12(unit.mul(new Q(weekly ? 7n : 30n))) : unit;
  const mult = m ?? 1n;

  const out: ModelPeriod[] = [];
  let balance = P;
  let paid = 0n;
  let carried = 0n;
  let emi: bigint | undefined;
  let flatTotal = 0n;
  let flatInterest = 0n;
  let flatPrincipal = 0n;
  let interestPaid = 0n;
  if (t.scheduleType === 'annuity') {
    const periods = BigInt(n - gP);
    const exact =
      pmtRate.n === 0n
        ? new Q(P, periods)
        : (() => {
            let f = new Q(1n);
            for (let k = 0n; k < periods; k++) f = f.mul(new Q(1n).add(pmtRate));
            return new Q(P)
              .mul(pmtRate)
              .mul(f)
              .div(f.sub(new Q(1n)));
          })();
    emi = exact.div(new Q(mult)).roundHalfEven() * mult;
  }
  const fixedPrincipal = new Q(P, BigInt(n - gP)).roundHalfEven();
  if (t.scheduleType === 'flat') {
    const term = daily ? BigInt(gap(start, due[n - 1] as Day)) : BigInt(n);
    const full = new Q(P).mul(unit).mul(new Q(term)).roundHalfEven();
    flatTotal = full - new Q(full, BigInt(n)).roundHalfEven() * BigInt(gWaived);
    if (n - gDeferred - gWaived <= 0) return { ok: false, reason: 'no interest period' };
    flatInterest = new Q(flatTotal, BigInt(n - gDeferred - gWaived)).roundHalfEven();
    flatPrincipal = fixedPrincipal;
  }
  const roundM = (x: bigint) => (m === undefined ? x : new Q(x, m).roundHalfEven() * m);

  for (let k = 1; k <= n && balance > 0n; k++) {
    const from = k === 1 ? ideal : (due[k - 2] as Day);
    let interest: bigint;
    let principal: bigint;
    if (t.scheduleType === 'flat') {
      interest = k <= gI ? 0n : flatInterest;
      principal = k <= gP ? 0n : flatPrincipal;
      if (m !== undefined) principal = roundM(principal) + roundM(interest) - interest;
    } else {
      const own = new Q(balance).mul(rateFor(gap(from, due[k - 1] as Day))).roundHalfEven();
      let ownShare: bigint; // the interest this period's principal is priced against
      if (k <= gWaived) {
        interest = 0n;
        ownShare = 0n;
      } else if (k <= gDeferred || own === 0n) {
        interest = 0n;
        ownShare = own;
        carried += own;
      } else {
        interest = carried + own;
        ownShare = own;
        carried = 0n;
      }
      principal = k <= gP ? 0n : emi !== undefined ? emi - ownShare : fixedPrincipal;
      if (emi !== undefined && interest > emi) return { ok: false, reason: 'interest exceeds instalment' };
    }
    if (paid + principal > P) principal = P - paid;
    else if (k === n) principal = P - paid;
    if (t.scheduleType === 'flat') {
      if (interestPaid + interest > flatTotal) interest = flatTotal - interestPaid;
      else if (k === n) interest = flatTotal - interestPaid;
    }
    if (principal < 0n || interest < 0n) return { ok: false, reason: 'negative amount' };
    paid += principal;
    interestPaid += interest;
    balance -= principal;
    out.push({ due: iso(due[k - 1] as Day), principal, interest });
  }
  if (carried > 0n) (out[out.length - 1] as ModelPeriod).interest += carried;
  return emi === undefined ? { ok: true, periods: out } : { ok: true, periods: out, instalment: emi };
}
