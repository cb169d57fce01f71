import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: [
      'services/*/test/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'charts/**/*.test.ts',
      'deploy/**/*.test.ts',
      'loadtest/**/*.test.ts',
    ],
    globalSetup: ['services/kit/test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
