import { defineConfig } from "vitest/config";

/** `npm run soak`: long-running load, outside CI. SOAK_MINUTES sets the length (default 2). */
export default defineConfig({
  test: {
    include: ["soak/**/*.soak.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 24 * 60 * 60 * 1000,
    hookTimeout: 60_000,
  },
});
