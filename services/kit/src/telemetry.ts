// OpenTelemetry: started by the service command (command.ts) before anything else, before
// grpc-js and pg load, so both are instrumented.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

let sdk: NodeSDK | undefined;

export function startTelemetry(serviceName: string): void {
  if (sdk) return;
  const exporting = Boolean(process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  // OTEL_TRACES_EXPORTER (e.g. console) wins; otherwise OTLP when an endpoint is set. With no
  // exporter at all, spans are not even recorded (sampler off): tracing every query costs a
  // tenth of the service's CPU, for nothing when nobody collects it. OTEL_TRACES_SAMPLER (for
  // example parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG=0.05) sets the sampling rate.
  const configured = Boolean(process.env.OTEL_TRACES_EXPORTER) || exporting;
  // Metrics go to Prometheus (metrics.ts) and logs to stdout (pino): the SDK exports neither
  // unless told to, instead of its default of retrying an OTLP endpoint nobody runs.
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  // Spans of queries only when some are recorded: the pg instrumentation wraps every query (3% of
  // the payment service's CPU, issue 14) even when its spans are dropped. The gRPC one stays: it
  // carries the trace context (the ids in the audit trail and on events) whether or not it records.
  const recording = configured || Boolean(process.env.OTEL_TRACES_SAMPLER);
  if (!configured && !process.env.OTEL_TRACES_SAMPLER) process.env.OTEL_TRACES_SAMPLER = 'always_off';
  const exporter = process.env.OTEL_TRACES_EXPORTER
    ? {}
    : exporting
      ? { traceExporter: new OTLPTraceExporter() }
      : { spanProcessors: [] };
  sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || serviceName,
    ...exporter,
    instrumentations: [new GrpcInstrumentation(), ...(recording ? [new PgInstrumentation()] : [])],
  });
  sdk.start();
}

export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}
