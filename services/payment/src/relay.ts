// Runs only this service's outbox relay (see kit runRelayProcess).
import { runRelayProcess, ShardRouter } from '@corebank/kit';
import { loadPaymentConfig } from './config.js';
import { DOMAIN } from './events.js';
import { SERVICE } from './service.js';

const config = loadPaymentConfig();
await runRelayProcess({
  service: SERVICE,
  domain: DOMAIN,
  router: new ShardRouter(config.shards, config.shardUrls, 2, SERVICE),
  nats: { url: config.natsUrl, user: config.natsUser, password: config.natsPassword },
  logLevel: config.logLevel,
});
