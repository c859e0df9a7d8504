import { defineConfig } from "vitest/config";

/** `npm run bench`: performance figures, outside CI. See BENCHMARKS.md. */
export default defineConfig({
  test: {
    include: ["bench/**/*.perf.ts"],
    globalSetup: ["bench/setup.ts"],
    testTimeout: 60 * 60 * 1000,
    hookTimeout: 120_000,
  },
});
