// vitest global setup: one real PostgreSQL server and one real nats-server for the whole run.
// Each test file creates its own databases and streams on them, so files run in parallel safely.
import type { TestProject } from 'vitest/node';
import { startNats, startPostgres } from '../src/testing/infra.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgUrl: string;
    natsUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const [pgServer, nats] = await Promise.all([startPostgres(), startNats()]);
  project.provide('pgAdminUrl', pgServer.adminUrl);
  project.provide('pgUrl', pgServer.url);
  project.provide('natsUrl', nats.url);
  return async () => {
    await Promise.all([pgServer.stop(), nats.stop()]);
  };
}
