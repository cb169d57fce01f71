import '@corebank/kit/telemetry-start';
import { createLogger, exitOnSignals } from '@corebank/kit';
import { loadPaymentConfig } from './config.js';
import { SERVICE, startPaymentService } from './service.js';

const config = loadPaymentConfig();
const log = createLogger(SERVICE, config.logLevel);
const app = await startPaymentService(config, log);
exitOnSignals(app.shutdown, log);
