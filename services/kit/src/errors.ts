// One domain-error type, mapped to a gRPC status carrying google.rpc.Status details
// (ErrorInfo with a machine-readable reason, BadRequest with field violations), so channels
// can act on errors without parsing text.
import { Metadata, status as Code, type ServiceError } from '@grpc/grpc-js';
import { isDatabaseUnavailable } from './db.js';
import { Any } from './gen/google/protobuf/any.js';
import { BadRequest, ErrorInfo, RetryInfo } from './gen/google/rpc/error_details.js';
import { Status } from './gen/google/rpc/status.js';

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'DEADLINE_EXCEEDED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface FieldViolation {
  field: string;
  description: string;
}

export const ERROR_DOMAIN = 'corebank.v1';

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    /** UPPER_SNAKE reason, stable across versions: what a channel switches on. */
    readonly reason: string,
    message: string,
    readonly violations: FieldViolation[] = [],
    readonly metadata: Record<string, string> = {},
    /** When to retry, for a shed call: sent as google.rpc.RetryInfo. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  static invalid(violations: FieldViolation[]): DomainError {
    const shown = capViolations(violations);
    const text = shown.map((v) => `${v.field}: ${v.description}`).join('; ');
    return new DomainError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', text, shown);
  }

  static notFound(field: string, what: string): DomainError {
    return new DomainError('NOT_FOUND', 'NOT_FOUND', `${field}: ${what} not found`, [
      { field, description: `${what} not found` },
    ]);
  }
}

/** Collects field violations while validating a request; throws them all at once. */
export class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string): void {
    this.list.push({ field, description });
  }
  throwIfAny(): void {
    if (this.list.length) throw DomainError.invalid(this.list);
  }
}

const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

/**
 * Bounds on what an error carries. A status travels in HTTP/2 trailers, and a peer drops a
 * connection whose header block exceeds its limit (8 KiB by default in many stacks): the caller
 * then hears nothing until its deadline, and so do later calls on that connection. So an error
 * names at most MAX_VIOLATIONS fields (then one more entry counting the rest), every text in it is
 * cut short, and the whole encoded status stays under MAX_STATUS_BYTES whatever a handler threw. The
 * message travels twice (grpc-message and inside the status), so both together stay near 5 KiB.
 */
export const MAX_VIOLATIONS = 100;
const MAX_FIELD_CHARS = 120;
const MAX_DESCRIPTION_CHARS = 160;
const MAX_MESSAGE_CHARS = 512;
const MAX_METADATA_CHARS = 256;
export const MAX_STATUS_BYTES = 4 * 1024;

const cut = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 3)}...`);

/** The first MAX_VIOLATIONS violations, each cut short, and one entry counting the rest. */
export function capViolations(violations: FieldViolation[]): FieldViolation[] {
  const shown = violations.slice(0, MAX_VIOLATIONS).map((v) => ({
    field: cut(v.field, MAX_FIELD_CHARS),
    description: cut(v.description, MAX_DESCRIPTION_CHARS),
  }));
  const rest = violations.length - shown.length;
  if (rest > 0) shown.push({ field: '*', description: `and ${rest} more violations` });
  return shown;
}

function toAny(typeName: string, value: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}

/**
 * The ServiceError a handler returns for any thrown value. PostgreSQL being down is UNAVAILABLE (the
 * caller retries later); any other unknown error is INTERNAL. Neither leaks the error's own text:
 * the service log has it.
 */
export function toServiceError(err: unknown): ServiceError {
  const e =
    err instanceof DomainError
      ? err
      : isDatabaseUnavailable(err)
        ? new DomainError('UNAVAILABLE', 'DEPENDENCY_UNAVAILABLE', 'the database is unavailable; retry')
        : new DomainError('INTERNAL', 'INTERNAL', 'internal error; see the service log');
  const code = Code[e.code];
  const message = cut(e.message, MAX_MESSAGE_CHARS);
  const info = ErrorInfo.encode({
    reason: cut(e.reason, MAX_FIELD_CHARS),
    domain: ERROR_DOMAIN,
    metadata: Object.fromEntries(
      Object.entries(e.metadata)
        .slice(0, 16)
        .map(([k, v]) => [cut(k, MAX_FIELD_CHARS), cut(v, MAX_METADATA_CHARS)]),
    ),
  }).finish();
  let violations = capViolations(e.violations);
  const encode = () => {
    const details: Any[] = [toAny('google.rpc.ErrorInfo', info)];
    if (e.retryAfterMs !== undefined) {
      const ms = Math.max(0, Math.ceil(e.retryAfterMs));
      const delay = { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
      details.push(toAny('google.rpc.RetryInfo', RetryInfo.encode({ retryDelay: delay }).finish()));
    }
    if (violations.length) {
      details.push(toAny('google.rpc.BadRequest', BadRequest.encode({ fieldViolations: violations }).finish()));
    }
    return Buffer.from(Status.encode({ code, message, details }).finish());
  };
  let encoded = encode();
  // Base64 in the trailer makes it a third larger: keep dropping violations until it fits.
  while (encoded.length > MAX_STATUS_BYTES && violations.length) {
    const keep = Math.floor(violations.length / 2);
    const dropped = e.violations.length - keep;
    violations = [...violations.slice(0, keep), { field: '*', description: `and ${dropped} more violations` }];
    if (keep === 0) violations = [];
    encoded = encode();
  }
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, encoded);
  return Object.assign(new Error(message), { code, details: message, metadata });
}

/** Client side: the reason and field violations of a failed call, for channels and tests. */
export function errorDetails(err: ServiceError): {
  reason?: string;
  violations: FieldViolation[];
  metadata: Record<string, string>;
  retryAfterMs?: number;
} {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === 'string') return { violations: [], metadata: {} };
  const st = Status.decode(raw);
  let reason: string | undefined;
  let metadata: Record<string, string> = {};
  let retryAfterMs: number | undefined;
  const violations: FieldViolation[] = [];
  for (const d of st.details) {
    if (d.typeUrl.endsWith('google.rpc.ErrorInfo')) ({ reason, metadata } = ErrorInfo.decode(d.value));
    if (d.typeUrl.endsWith('google.rpc.BadRequest')) violations.push(...BadRequest.decode(d.value).fieldViolations);
    if (d.typeUrl.endsWith('google.rpc.RetryInfo')) {
      const delay = RetryInfo.decode(d.value).retryDelay;
      if (delay) retryAfterMs = Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1_000_000);
    }
  }
  return { reason, violations, metadata, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

/** gRPC codes a caller can act on: a downstream service's verdict passes through unchanged. */
const PASSED_ON: Partial<Record<number, ErrorCode>> = {
  [Code.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [Code.NOT_FOUND]: 'NOT_FOUND',
  [Code.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [Code.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [Code.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [Code.ABORTED]: 'ABORTED',
};

const isServiceError = (e: unknown): e is ServiceError =>
  typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number' && 'metadata' in e;

/**
 * Turns a failed call to another corebank service into the DomainError our caller gets: its
 * verdicts (code, reason, field violations, metadata) pass through; a deadline stays a deadline;
 * anything else says which dependency failed, without leaking its internals.
 */
export function fromDownstream(err: unknown, service: string, rpc: string): DomainError {
  if (err instanceof DomainError) return err;
  const where = `${service} service ${rpc}`;
  if (!isServiceError(err)) return new DomainError('UNAVAILABLE', 'DEPENDENCY_UNAVAILABLE', `${where}: ${String(err)}`);
  const { reason, violations, metadata, retryAfterMs } = errorDetails(err);
  const passed = PASSED_ON[err.code];
  if (passed)
    return new DomainError(passed, reason ?? passed, `${where}: ${err.details}`, violations, metadata, retryAfterMs);
  // The customer binding a call carried onward was refused: the caller's verdict, not ours to fix
  // (a missing scope of our own service identity is, and stays INTERNAL below).
  if (err.code === Code.PERMISSION_DENIED && reason === 'CUSTOMER_MISMATCH') {
    return new DomainError('PERMISSION_DENIED', reason, `${where}: ${err.details}`, violations, metadata);
  }
  if (err.code === Code.DEADLINE_EXCEEDED)
    return new DomainError('DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', `${where}: deadline exceeded`);
  if (err.code === Code.UNAVAILABLE || err.code === Code.CANCELLED) {
    return new DomainError('UNAVAILABLE', 'DEPENDENCY_UNAVAILABLE', `${where}: unavailable; retry`);
  }
  return new DomainError(
    'INTERNAL',
    'DEPENDENCY_FAILED',
    `${where} failed (gRPC code ${err.code}${reason ? `, ${reason}` : ''})`,
  );
}
