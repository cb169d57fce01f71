// Runs only the outbox relay (no gRPC): for deployments that scale the relay apart.
import { connectNats, createLogger, ensureStream, exitOnSignals, OutboxRelay } from '@corebank/kit';
import { globalRouter, loadProductConfig } from './config.js';
import { DOMAIN } from './events.js';
import { SERVICE } from './service.js';

const config = loadProductConfig();
const log = createLogger(`${SERVICE}-relay`, config.logLevel);
const router = globalRouter(config, 2, SERVICE);
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
