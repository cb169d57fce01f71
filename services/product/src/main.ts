import '@corebank/kit/telemetry-start';
import { createLogger, exitOnSignals } from '@corebank/kit';
import { loadProductConfig } from './config.js';
import { SERVICE, startProductService } from './service.js';

const config = loadProductConfig();
const log = createLogger(SERVICE, config.logLevel);
const app = await startProductService(config, log);
exitOnSignals(app.shutdown, log);
