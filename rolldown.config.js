// @ts-check
import { defineConfig } from "rolldown";

/**
 * Bundles the `muster` executable (dist/bin/) from tsc's output. Node spends
 * more time finding and linking several hundred small modules than running
 * them, and one CommonJS file can be compiled with a code cache
 * (`src/cli/bin.ts`). LevelDB's JavaScript is bundled too; only its native
 * binding, which finds its prebuilt binary beside itself, stays in
 * node_modules, with pino-pretty (loaded only for a terminal), prom-client
 * (loaded only with --metrics), dns-packet (only with --dns-addr) and grpc-js.
 * dist/src stays as it is for the library.
 *
 * The running registry keeps the bundle's source in its heap for as long as
 * it lives (V8 compiles functions lazily from it). One character outside
 * Latin-1 anywhere in it (a dash in a comment, a space in a table of
 * Unicode spaces) makes V8 keep all of it two bytes a character, so
 * non-ASCII is written as escapes, and JSDoc, which only readers of
 * src/ need, is left out: 2.1 MB of heap became 0.9 (BENCHMARKS.md,
 * Memory, session 18).
 */
export default defineConfig([
  {
    input: { main: "dist/src/cli/main.js" },
    platform: "node",
    external: [/^(pino-pretty|prom-client|dns-packet|@grpc\/grpc-js)(\/|$)/, /^node:/],
    plugins: [
      {
        name: "leveldb-native-binding",
        resolveId(source, importer) {
          return source === "./binding" && importer !== undefined && /[\\/]classic-level[\\/]/.test(importer) ? { id: "classic-level/binding.js", external: true } : null;
        },
      },
    ],
    output: {
      dir: "dist/bin",
      format: "cjs",
      entryFileNames: "[name].cjs",
      dynamicImportInCjs: false,
      sourcemap: true,
      charset: "ascii",
      comments: { legal: true, annotation: true, jsdoc: false },
    },
  },
  {
    input: { muster: "dist/src/cli/bin.js" },
    platform: "node",
    external: [/^node:/],
    output: { dir: "dist/bin", format: "cjs", entryFileNames: "[name].cjs" },
  },
]);
