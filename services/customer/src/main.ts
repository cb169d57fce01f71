import '@corebank/kit/telemetry-start';
import { createLogger, exitOnSignals } from '@corebank/kit';
import { loadCustomerConfig } from './config.js';
import { SERVICE, startCustomerService } from './service.js';

const config = loadCustomerConfig();
const log = createLogger(SERVICE, config.logLevel);
const app = await startCustomerService(config, log);
exitOnSignals(app.shutdown, log);
