// One domain-error type, mapped to a gRPC status carrying google.rpc.Status details
// (ErrorInfo with a machine-readable reason, BadRequest with field violations), so channels
// can act on errors without parsing text.
import { Metadata, status as Code, type ServiceError } from '@grpc/grpc-js';
import { Any } from './gen/google/protobuf/any.js';
import { BadRequest, ErrorInfo } from './gen/google/rpc/error_details.js';
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
  ) {
    super(message);
    this.name = 'DomainError';
  }

  static invalid(violations: FieldViolation[]): DomainError {
    const text = violations.map((v) => `${v.field}: ${v.description}`).join('; ');
    return new DomainError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', text, violations);
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

function toAny(typeName: string, value: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}

/** The ServiceError a handler returns for any thrown value; unknown errors become INTERNAL without leaking text. */
export function toServiceError(err: unknown): ServiceError {
  const e =
    err instanceof DomainError ? err : new DomainError('INTERNAL', 'INTERNAL', 'internal error; see the service log');
  const code = Code[e.code];
  const details: Any[] = [
    toAny(
      'google.rpc.ErrorInfo',
      ErrorInfo.encode({ reason: e.reason, domain: ERROR_DOMAIN, metadata: e.metadata }).finish(),
    ),
  ];
  if (e.violations.length) {
    details.push(toAny('google.rpc.BadRequest', BadRequest.encode({ fieldViolations: e.violations }).finish()));
  }
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(Status.encode({ code, message: e.message, details }).finish()));
  return Object.assign(new Error(e.message), { code, details: e.message, metadata });
}

/** Client side: the reason and field violations of a failed call, for channels and tests. */
export function errorDetails(err: ServiceError): {
  reason?: string;
  violations: FieldViolation[];
  metadata: Record<string, string>;
} {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === 'string') return { violations: [], metadata: {} };
  const st = Status.decode(raw);
  let reason: string | undefined;
  let metadata: Record<string, string> = {};
  const violations: FieldViolation[] = [];
  for (const d of st.details) {
    if (d.typeUrl.endsWith('google.rpc.ErrorInfo')) ({ reason, metadata } = ErrorInfo.decode(d.value));
    if (d.typeUrl.endsWith('google.rpc.BadRequest')) violations.push(...BadRequest.decode(d.value).fieldViolations);
  }
  return { reason, violations, metadata };
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
  const { reason, violations, metadata } = errorDetails(err);
  const passed = PASSED_ON[err.code];
  if (passed) return new DomainError(passed, reason ?? passed, `${where}: ${err.details}`, violations, metadata);
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
