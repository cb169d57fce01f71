// Runs only the outbox relay (no gRPC): for deployments that scale the relay apart.
import { connectNats, createLogger, ensureStream, exitOnSignals, OutboxRelay, ShardRouter } from '@corebank/kit';
import { loadCustomerConfig } from './config.js';
import { DOMAIN } from './events.js';
import { SERVICE } from './service.js';

const config = loadCustomerConfig();
const log = createLogger(`${SERVICE}-relay`, config.logLevel);
const router = new ShardRouter(config.shards, config.shardUrls, 2, SERVICE);
const nats = await connectNats({
  url: config.natsUrl,
  user: config.natsUser,
  password: config.natsPassword,
  name: `${SERVICE}-relay`,
});
await ensureStream(nats.jsm, DOMAIN);
const relay = new OutboxRelay(router, nats.js, log);
relay.start();
exitOnSignals(async () => {
  await relay.stop();
  await nats.nc.drain();
  await router.close();
}, log);
