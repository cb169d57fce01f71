// Imported first by every service entry point, so instrumentation is in place before grpc-js and pg load.
import { startTelemetry } from './telemetry.js';

startTelemetry(process.env.SERVICE ?? 'corebank');
