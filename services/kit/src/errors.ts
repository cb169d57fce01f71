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
export function errorDetails(err: ServiceError): { reason?: string; violations: FieldViolation[] } {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === 'string') return { violations: [] };
  const st = Status.decode(raw);
  let reason: string | undefined;
  const violations: FieldViolation[] = [];
  for (const d of st.details) {
    if (d.typeUrl.endsWith('google.rpc.ErrorInfo')) reason = ErrorInfo.decode(d.value).reason;
    if (d.typeUrl.endsWith('google.rpc.BadRequest')) violations.push(...BadRequest.decode(d.value).fieldViolations);
  }
  return { reason, violations };
}
