// @ts-check
import { createHash } from "node:crypto";

/*
 * Where the executable keeps its bundle's V8 code cache, and what the
 * cache's first line says. JavaScript rather than TypeScript (type-checked
 * all the same) because the build's last step, `scripts/warm-code-cache.mjs`,
 * runs under plain Node and must read the cache by the rules `bin.ts` writes
 * it by.
 */

/**
 * How far the process that made a cache had run: through the bundle's top
 * level, or through a served first call as well. The deeper cache also holds
 * the functions that answer calls, which saves `serve` about 8 ms more before
 * its first answer (BENCHMARKS.md, "Start-up").
 * @typedef {"top-level" | "serving"} CacheDepth
 */

/**
 * The code cache of `bundleFile` for this Node version and architecture.
 * Each has a file of its own, so switching between them does not throw the
 * others away.
 * @param {string} bundleFile
 * @returns {string}
 */
export function codeCacheFile(bundleFile) {
  return `${bundleFile}.${process.version}-${process.arch}.cache`;
}

/**
 * What a cache's first line says it was made from: this Node version and
 * architecture, and the bundle's SHA-256. V8 itself compares only the
 * source's length, and sizes and modification times repeat (npm packs every
 * file with the same date), so only the hash tells one build from another.
 * Under a millisecond for the 900 KB bundle.
 * @param {Uint8Array} bundle the bundle's bytes
 * @returns {string}
 */
export function codeCacheIdentity(bundle) {
  return `muster code cache ${process.version} ${process.arch} sha256:${createHash("sha256").update(bundle).digest("hex")}`;
}

/**
 * A cache file's contents: its first line, naming the bundle it was made
 * from (`identity`) and its depth, then V8's data.
 * @param {string} identity
 * @param {CacheDepth} depth
 * @param {Uint8Array} data
 * @returns {Buffer}
 */
export function formatCodeCache(identity, depth, data) {
  return Buffer.concat([Buffer.from(`${identity} depth:${depth}\n`), data]);
}

/**
 * What a cache file's first line names, its depth, and V8's data after it;
 * undefined when the contents do not start with such a line.
 * @param {Buffer} contents
 * @returns {{ identity: string; depth: CacheDepth; data: Buffer } | undefined}
 */
export function parseCodeCache(contents) {
  const lineEnd = contents.indexOf(10);
  if (lineEnd < 0) return undefined;
  const [identity, depth, ...rest] = contents.subarray(0, lineEnd).toString("latin1").split(" depth:");
  if (identity === undefined || rest.length > 0 || (depth !== "top-level" && depth !== "serving")) return undefined;
  return { identity, depth, data: contents.subarray(lineEnd + 1) };
}
