import '@corebank/kit/telemetry-start';
import { createLogger, exitOnSignals } from '@corebank/kit';
import { loadAccountConfig } from './config.js';
import { SERVICE, startAccountService } from './service.js';

const config = loadAccountConfig();
const log = createLogger(SERVICE, config.logLevel);
const app = await startAccountService(config, log);
exitOnSignals(app.shutdown, log);
