// Runs only this service's outbox relay (see kit runRelayProcess).
import { runRelayProcess } from '@corebank/kit';
import { globalRouter, loadProductConfig } from './config.js';
import { DOMAIN } from './events.js';
import { SERVICE } from './service.js';

const config = loadProductConfig();
await runRelayProcess({
  service: SERVICE,
  domain: DOMAIN,
  router: globalRouter(config, 2, SERVICE),
  nats: { url: config.natsUrl, user: config.natsUser, password: config.natsPassword },
  logLevel: config.logLevel,
});
