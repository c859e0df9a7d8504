import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { codeCacheFile, parseCodeCache } from "../src/cli/code-cache-file.mjs";
import { musterVersion } from "../src/version.js";
import { musterBin, MusterProcess } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";

const run = promisify(execFile);
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const warmScript = fileURLToPath(new URL("../scripts/warm-code-cache.mjs", import.meta.url));
const copies: string[] = [];

/**
 * The built executable copied into a folder of its own under dist/ (so its
 * packages still resolve), where a test can spoil the cache without touching
 * the one the rest of the suite starts with.
 */
async function copyOfExecutable(): Promise<string> {
  const folder = await mkdtemp(join(dist, "code-cache-test-"));
  copies.push(folder);
  await copyFile(musterBin, join(folder, "muster.cjs"));
  await copyFile(join(musterBin, "..", "main.cjs"), join(folder, "main.cjs"));
  return folder;
}

async function muster(folder: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(folder, "muster.cjs"), ...args]);
  return stdout;
}

/** `muster serve` from `folder` on a fresh data directory: answers one call, then stops with SIGINT and is waited for. */
async function serveOneCall(folder: string): Promise<void> {
  const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() }, [], [], join(folder, "muster.cjs"));
  await createRegistryClient({ baseUrl: await server.ready() }).status({});
  await server.kill("SIGINT");
}

/** The cache file of the bundle in `folder`. */
function cacheOf(folder: string): string {
  return codeCacheFile(join(folder, "main.cjs"));
}

/** What the cache's first line says it holds. */
async function cacheDepth(folder: string): Promise<string | undefined> {
  return parseCodeCache(await readFile(cacheOf(folder)))?.depth;
}

/** The inode changes whenever the cache is written anew (a rename), and only then. */
async function cacheInode(folder: string): Promise<number> {
  return (await stat(cacheOf(folder))).ino;
}

afterEach(async () => {
  await Promise.all(copies.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
});

describe("the executable's code cache", () => {
  it("is written by the first start and used, not rewritten, by the next", async () => {
    const folder = await copyOfExecutable();
    expect(await muster(folder, "--version")).toBe(`${musterVersion}\n`);
    const written = await cacheInode(folder);
    expect((await stat(cacheOf(folder))).size).toBeGreaterThan(100_000);

    expect(await muster(folder, "--version")).toBe(`${musterVersion}\n`);
    expect(await cacheInode(folder)).toBe(written);
  });

  it("is made deeper by the first call `serve` answers, once, and kept by every later start", async () => {
    const folder = await copyOfExecutable();
    await muster(folder, "--version");
    expect(await cacheDepth(folder)).toBe("top-level");
    const topLevelBytes = (await stat(cacheOf(folder))).size;

    await serveOneCall(folder);
    expect(await cacheDepth(folder)).toBe("serving");
    // It also holds the functions that answered the call.
    expect((await stat(cacheOf(folder))).size).toBeGreaterThan(topLevelBytes);
    const deepened = await cacheInode(folder);

    await serveOneCall(folder);
    expect(await muster(folder, "--version")).toBe(`${musterVersion}\n`);
    expect(await cacheInode(folder)).toBe(deepened);
    expect(await cacheDepth(folder)).toBe("serving");
  });

  it("is made serving-deep by the build's last step, whatever MUSTER_* settings the builder has, and kept by `serve`", async () => {
    const folder = await copyOfExecutable();
    // Settings that would stop `serve` (or turn a plain call away) if the warming start took them.
    const { stderr } = await run(process.execPath, [warmScript, join(folder, "muster.cjs")], { env: { ...process.env, MUSTER_TLS_CERT: join(folder, "missing.pem"), MUSTER_ADDR: "256.0.0.1:1" } });
    expect(stderr).toBe("");
    expect(await cacheDepth(folder)).toBe("serving");
    const warmed = await cacheInode(folder);

    await serveOneCall(folder);
    await run(process.execPath, [warmScript, join(folder, "muster.cjs")]);
    expect(await cacheInode(folder)).toBe(warmed);
  });

  it("is warmed again by the next build's last step, though the earlier build's cache is serving-deep", async () => {
    const folder = await copyOfExecutable();
    await run(process.execPath, [warmScript, join(folder, "muster.cjs")]);
    expect(await cacheDepth(folder)).toBe("serving");
    // A rebuild: another bundle beside the cache the earlier one left, which the executable would throw away.
    const bundle = join(folder, "main.cjs");
    const rebuilt = Buffer.from((await readFile(bundle, "utf8")).replace("a service registry for services and AI agents", "a service registry for services and AI agents!"));
    await writeFile(bundle, rebuilt);

    await run(process.execPath, [warmScript, join(folder, "muster.cjs")]);
    const cache = parseCodeCache(await readFile(cacheOf(folder)));
    expect(cache?.identity).toContain(`sha256:${createHash("sha256").update(rebuilt).digest("hex")}`);
    expect(cache?.depth).toBe("serving");
  });

  it("is left to the first start when the build cannot warm it, and the build goes on", async () => {
    const folder = await copyOfExecutable();
    await writeFile(join(folder, "main.cjs"), "process.exit(3);\n");
    const { stderr } = await run(process.execPath, [warmScript, join(folder, "muster.cjs")]);
    expect(stderr).toMatch(/^muster build: the code cache was not warmed \(muster serve exited before serving: .*\); the first start will warm it\n$/);
  });

  it("is replaced when damaged, and the executable still starts", async () => {
    const folder = await copyOfExecutable();
    await muster(folder, "--version");
    const cacheFile = cacheOf(folder);
    // Keep the first line (which names the bundle it was made from) and spoil what V8 reads.
    const cache = await readFile(cacheFile);
    const body = cache.indexOf(10) + 1;
    await writeFile(cacheFile, Buffer.concat([cache.subarray(0, body), Buffer.alloc(cache.length - body, 0x5a)]));
    const spoiled = await cacheInode(folder);
    expect(await muster(folder, "--version")).toBe(`${musterVersion}\n`);
    expect(await cacheInode(folder)).not.toBe(spoiled);

    await writeFile(cacheFile, "not a cache");
    expect(await muster(folder, "--version")).toBe(`${musterVersion}\n`);
    expect((await stat(cacheFile)).size).toBeGreaterThan(100_000);
  });

  it("never runs code cached from an earlier build of the same length and date", async () => {
    const folder = await copyOfExecutable();
    expect(await muster(folder, "--help")).toContain("a service registry for services and AI agents");
    // V8 itself compares only the source's length, and npm gives every packed file the same date.
    const bundle = join(folder, "main.cjs");
    const { atime, mtime } = await stat(bundle);
    const rebuilt = (await readFile(bundle, "utf8")).replace("a service registry for services and AI agents", "A SERVICE REGISTRY FOR SERVICES AND AI AGENTS");
    await writeFile(bundle, rebuilt);
    await utimes(bundle, atime, mtime);
    expect(await muster(folder, "--help")).toContain("A SERVICE REGISTRY FOR SERVICES AND AI AGENTS");
  });
});

describe("the executable's bundle", () => {
  it("is ASCII, so the source the registry keeps in its heap takes one byte a character, not two", async () => {
    const bundle = await readFile(join(musterBin, "..", "main.cjs"));
    const firstOutsideAscii = bundle.findIndex((byte) => byte > 0x7f);
    expect(firstOutsideAscii === -1 ? "all ASCII" : bundle.subarray(Math.max(0, firstOutsideAscii - 60), firstOutsideAscii + 20).toString("utf8")).toBe("all ASCII");
  });
});
