#!/usr/bin/env node
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";
import { codeCacheFile, codeCacheIdentity, formatCodeCache, parseCodeCache, type CacheDepth } from "./code-cache-file.mjs";
import type { CliHooks } from "./main.js";

/*
 * The `muster` executable. It loads the bundled CLI (`main.cjs` beside it)
 * with a V8 code cache, so that every start after the first skips compiling
 * most of the 900 KB bundle: on Node 20, which has no compile cache of its
 * own, that is about a fifth of the time to the first answered call
 * (BENCHMARKS.md, "Start-up"). The build turns it into CommonJS
 * (`dist/bin/muster.cjs`), because Node starts a CommonJS entry point about
 * 5 ms sooner than an ES module.
 */

/** What `main.cjs` exports (`src/cli/main.ts`). */
interface Cli {
  runCli(hooks: CliHooks): Promise<never>;
}

type ModuleWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

/** A compiled bundle whose cache can still be made deeper. */
interface LoadedBundle {
  readonly exports: unknown;
  /** Writes a serving-deep cache, unless the one this start used already was. */
  keepServingCache(): void;
}

/**
 * Runs a CommonJS file as Node would, but compiled with the code cache kept
 * beside it when that cache was made from this very file by this very Node.
 * V8 itself compares only the source's length, so the cache's first line
 * names the file's SHA-256 (`codeCacheIdentity`), and each Node version and
 * architecture has a cache of its own (`codeCacheFile`). A missing, stale
 * or damaged cache costs one normal compile and is written anew, first at
 * the top-level depth; `keepServingCache` deepens it later. The build's last
 * step (`scripts/warm-code-cache.mjs`) serves one call so that the cache is
 * already that deep for the first start. A folder that cannot be written (a
 * read-only install) only means no cache.
 */
function loadWithCodeCache(file: string): LoadedBundle {
  const bytes = readFileSync(file);
  const source = bytes.toString("utf8");
  const cacheFile = codeCacheFile(file);
  const identity = codeCacheIdentity(bytes);
  const cache = readCache(cacheFile, identity);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData: cache?.data });
  const loaded = { exports: {} as unknown };
  (script.runInThisContext() as ModuleWrapper)(loaded.exports, createRequire(file), loaded, file, dirname(file));
  const usable = cache !== undefined && script.cachedDataRejected !== true;
  // Made after the module ran, the cache also holds the functions its top level called.
  if (!usable) writeCache(cacheFile, identity, "top-level", script.createCachedData());
  let depth: CacheDepth = usable ? cache.depth : "top-level";
  return {
    exports: loaded.exports,
    keepServingCache() {
      if (depth === "serving") return;
      depth = "serving";
      writeCache(cacheFile, identity, depth, script.createCachedData());
    },
  };
}

/** The cache's V8 data and depth, when its first line names `identity`. */
function readCache(cacheFile: string, identity: string): { data: Buffer; depth: CacheDepth } | undefined {
  let contents: Buffer;
  try {
    contents = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  const cache = parseCodeCache(contents);
  return cache?.identity === identity ? cache : undefined;
}

/** Writes whole or not at all: a concurrent start reads either the old cache or the new one. */
function writeCache(cacheFile: string, identity: string, depth: CacheDepth, data: Buffer): void {
  const partial = `${cacheFile}.${process.pid}`;
  try {
    writeFileSync(partial, formatCodeCache(identity, depth, data));
    renameSync(partial, cacheFile);
  } catch {
    rmSync(partial, { force: true });
  }
}

const bundle = loadWithCodeCache(fileURLToPath(new URL("main.cjs", import.meta.url)));
void (bundle.exports as Cli).runCli({ servingWarm: () => bundle.keepServingCache() });
