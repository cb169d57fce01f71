// OpenTelemetry: started by the `--import` of telemetry-register before any other module loads,
// so grpc-js and pg are instrumented. Traces export over OTLP only when an endpoint is set.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

let sdk: NodeSDK | undefined;

export function startTelemetry(serviceName: string): void {
  if (sdk) return;
  const exporting = Boolean(process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  // OTEL_TRACES_EXPORTER (e.g. console) wins; otherwise OTLP when an endpoint is set, else no
  // exporter: spans still exist, so trace ids reach the logs and the outbox headers.
  const exporter = process.env.OTEL_TRACES_EXPORTER
    ? {}
    : exporting
      ? { traceExporter: new OTLPTraceExporter() }
      : { spanProcessors: [] };
  sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || serviceName,
    ...exporter,
    instrumentations: [new GrpcInstrumentation(), new PgInstrumentation()],
  });
  sdk.start();
}

export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}
