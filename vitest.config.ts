// Test runner settings: Node environment; workerd suites start their own Miniflare.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // expect.poll waits for a page or a server to get somewhere: 1 s (vitest's default) is too
    // short for a first prediction on a cold model while the other test file loads both cores.
    expect: { poll: { timeout: 15_000 } },
  },
});
