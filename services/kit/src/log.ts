// pino logs that carry the active trace id and print bigint amounts as strings.
import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    serializers: { err: pino.stdSerializers.err },
    // JSON has no bigint: without this pino would throw on an amount. Errors keep their message,
    // stack and SQLSTATE/gRPC code (their properties are not enumerable, so JSON would drop them).
    formatters: {
      log: (obj) =>
        JSON.parse(
          JSON.stringify(obj, (_k, v: unknown) =>
            typeof v === 'bigint' ? v.toString() : v instanceof Error ? pino.stdSerializers.err(v) : v,
          ),
        ),
    },
    mixin() {
      const span = trace.getActiveSpan()?.spanContext();
      return span ? { trace_id: span.traceId, span_id: span.spanId } : {};
    },
    redact: { paths: ['authorization', '*.authorization', 'token', '*.token', 'password', '*.password'], remove: true },
  });
}
