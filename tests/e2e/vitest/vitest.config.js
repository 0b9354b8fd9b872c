import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/*.test.js'],
    // The incident's setup: tinypool child processes, one per test file.
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 3 } },
    // Longer than cg-test's --timeout in scripts/e2e.sh: the hang must outlast
    // vitest's own per-test guard, as it did in the incident.
    testTimeout: 120_000,
    watch: false,
  },
})
