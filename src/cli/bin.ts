#!/usr/bin/env node
import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

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
  runCli(): Promise<never>;
}

type ModuleWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

/**
 * Runs a CommonJS file as Node would, but compiled with the code cache kept
 * beside it when that cache was made from this very file by this very Node.
 * V8 itself compares only the source's length, so the cache's first line
 * names the file's SHA-256 (under a millisecond; sizes and modification
 * times repeat: npm packs every file with the same date). Each Node version
 * and architecture has a cache file of its own, so switching between them
 * does not throw the others away. A missing, stale or damaged cache costs
 * one normal compile and is written anew; a folder that cannot be written
 * (a read-only install) only means no cache.
 */
function loadWithCodeCache(file: string): unknown {
  const bytes = readFileSync(file);
  const source = bytes.toString("utf8");
  const cacheFile = `${file}.${process.version}-${process.arch}.cache`;
  const header = Buffer.from(`muster code cache ${process.version} ${process.arch} sha256:${createHash("sha256").update(bytes).digest("hex")}\n`);
  const cachedData = readCache(cacheFile, header);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  const loaded = { exports: {} as unknown };
  (script.runInThisContext() as ModuleWrapper)(loaded.exports, createRequire(file), loaded, file, dirname(file));
  // Made after the module ran, the cache also holds the functions its top level called.
  if (cachedData === undefined || script.cachedDataRejected === true) writeCache(cacheFile, header, script.createCachedData());
  return loaded.exports;
}

function readCache(cacheFile: string, header: Buffer): Buffer | undefined {
  let contents: Buffer;
  try {
    contents = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  return contents.subarray(0, header.length).equals(header) ? contents.subarray(header.length) : undefined;
}

/** Writes whole or not at all: a concurrent start reads either the old cache or the new one. */
function writeCache(cacheFile: string, header: Buffer, data: Buffer): void {
  const partial = `${cacheFile}.${process.pid}`;
  try {
    writeFileSync(partial, Buffer.concat([header, data]));
    renameSync(partial, cacheFile);
  } catch {
    rmSync(partial, { force: true });
  }
}

void (loadWithCodeCache(fileURLToPath(new URL("main.cjs", import.meta.url))) as Cli).runCli();
