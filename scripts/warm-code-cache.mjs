// @ts-check
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { codeCacheFile, codeCacheIdentity, parseCodeCache } from "../src/cli/code-cache-file.mjs";

/*
 * The build's last step: makes the executable's code cache as deep as a
 * served call makes it (`src/cli/bin.ts`), so that the first `muster serve`
 * after a build starts as fast as every later one. It starts `serve` from
 * the executable on a free loopback port and a data directory of its own,
 * sends it one gRPC call (the path most clients take), waits for the cache
 * to say `depth:serving`, and stops it. Without this, the first start after
 * a build compiled the serving path and wrote the deeper cache itself:
 * 2.7x `node -e 0` instead of 2x (BENCHMARKS.md, "Session 23").
 *
 * A build must not fail for want of a warm cache: when any step fails (no
 * loopback, a folder that cannot be written), this says so on stderr and
 * exits 0, and the first start makes the cache as it did before.
 *
 * Usage: node scripts/warm-code-cache.mjs [path to muster.cjs]
 * (default dist/bin/muster.cjs).
 */

const executable = resolve(process.argv[2] ?? "dist/bin/muster.cjs");
const bundleFile = join(dirname(executable), "main.cjs");
const cacheFile = codeCacheFile(bundleFile);
/** Long enough for a slow machine's start, which takes about 150 ms on the standard one. */
const giveUpAfterMs = 20_000;

/** @type {string | undefined} */
let bundleIdentity;

/**
 * How deep the cache of this very bundle is, or undefined without one. A
 * cache left by an earlier build counts as none: the executable would
 * throw it away.
 */
function cacheDepth() {
  try {
    bundleIdentity ??= codeCacheIdentity(readFileSync(bundleFile));
    const cache = parseCodeCache(readFileSync(cacheFile));
    return cache?.identity === bundleIdentity ? cache.depth : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts `serve` with none of the caller's MUSTER_* settings (TLS or access
 * tokens would turn the call away) and resolves with its URL.
 * @param {string} dataDir
 * @returns {Promise<{ url: string; stop: () => Promise<void> }>}
 */
function startServe(dataDir) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MUSTER_")));
  const child = spawn(process.execPath, [executable, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "info"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((done) => child.once("close", done));
  const stop = async () => {
    child.kill("SIGTERM");
    await exited;
  };
  return new Promise((resolveUrl, reject) => {
    let output = "";
    const look = (/** @type {Buffer} */ chunk) => {
      output += chunk.toString("utf8");
      const url = /"url":"([^"]+)"/.exec(output)?.[1];
      if (url !== undefined) resolveUrl({ url, stop });
    };
    child.stdout.on("data", look);
    child.stderr.on("data", (/** @type {Buffer} */ chunk) => (output += chunk.toString("utf8")));
    void exited.then(() => {
      const lines = output.trim().split("\n");
      reject(new Error(`muster serve exited before serving: ${lines.find((line) => /^(muster: |\w*Error)/.test(line)) ?? lines.pop() ?? ""}`));
    });
  });
}

/**
 * One gRPC Status call (an empty request) over HTTP/2; resolves with its grpc-status.
 * @param {string} url
 * @returns {Promise<string>}
 */
function statusCall(url) {
  return new Promise((resolveStatus, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": "/muster.v1.RegistryService/Status", "content-type": "application/grpc", te: "trailers" });
    stream.on("error", reject);
    stream.on("trailers", (/** @type {http2.IncomingHttpHeaders} */ trailers) => resolveStatus(String(trailers["grpc-status"])));
    stream.on("close", () => {
      session.close();
      reject(new Error("the warming call ended without trailers"));
    });
    stream.resume();
    stream.end(Buffer.alloc(5));
  });
}

async function waitForServingDepth() {
  while (cacheDepth() !== "serving") await new Promise((wake) => setTimeout(wake, 20));
}

/**
 * Serves one call from a registry of its own and waits for the deeper cache.
 * @param {string} dataDir
 * @param {(stop: () => Promise<void>) => void} onStarted
 */
async function warm(dataDir, onStarted) {
  const server = await startServe(dataDir);
  onStarted(server.stop);
  const status = await statusCall(server.url);
  if (status !== "0") throw new Error(`the warming call answered grpc-status ${status}`);
  await waitForServingDepth();
}

if (cacheDepth() !== "serving") {
  const dataDir = mkdtempSync(join(tmpdir(), "muster-warm-"));
  /** @type {(() => Promise<void>) | undefined} */
  let stop;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const givenUp = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${giveUpAfterMs / 1000}s`)), giveUpAfterMs)));
  try {
    await Promise.race([warm(dataDir, (started) => (stop = started)), givenUp]);
  } catch (error) {
    process.stderr.write(`muster build: the code cache was not warmed (${error instanceof Error ? error.message : String(error)}); the first start will warm it\n`);
  } finally {
    clearTimeout(timer);
    await stop?.();
    rmSync(dataDir, { recursive: true, force: true });
  }
  // A warming call still waiting on a registry that never answered must not keep the build waiting.
  process.exit(0);
}
