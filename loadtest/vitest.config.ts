// Runs the load-test harness's own tests (the bench smoke) on their own:
//   npx vitest run --config loadtest/vitest.config.ts
// The smoke starts its own PostgreSQL and nats-server, so it needs no global setup.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['loadtest/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    reporters: ['default'],
  },
});
