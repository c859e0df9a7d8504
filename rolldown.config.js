// @ts-check
import { defineConfig } from "rolldown";

/**
 * Bundles the `muster` executable (dist/bin/) from tsc's output: Node's ESM
 * loader spends more time finding and linking several hundred small modules
 * than running them, about a third of start-up. Packages with native code or
 * loaded only on demand stay outside. dist/src stays as it is for the library.
 */
export default defineConfig({
  input: { muster: "dist/src/cli/bin.js" },
  platform: "node",
  external: [/^(level|classic-level|pino-pretty|@grpc\/grpc-js)(\/|$)/, /^node:/],
  output: { dir: "dist/bin", format: "esm", chunkFileNames: "[name].js", sourcemap: true },
});
