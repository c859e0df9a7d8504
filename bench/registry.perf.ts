import { spawn, spawnSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { expect, it } from "vitest";
import { createRegistryClient, type RegistryClient } from "../src/client/registry-client.js";
import { codeCacheFile } from "../src/cli/code-cache-file.mjs";
import { LevelStore } from "../src/store/level-store.js";
import { DiscoverRequestSchema, DiscoverResponseSchema, HeartbeatRequestSchema, RegisterRequestSchema, type WatchResponse } from "../gen/muster/v1/registry_pb.js";
import { MusterProcess, musterBin } from "../test/support/registry-process.js";
import { openLeanWatchers } from "../test/support/lean-watchers.js";
import { residentMiB } from "../test/support/machine.js";
import { tempDataDir } from "../test/support/test-registry.js";
import { percentile, runH2load, type Load } from "./h2load.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/** Discover requests per second in the paced run, spread over its 20 connections x 10 streams. */
const discoverRate = Number(process.env.BENCH_DISCOVER_RATE ?? 2_000);
const rows: [string, string][] = [];
const record = (what: string, value: string) => {
  rows.push([what, value]);
  console.log(`${what}: ${value}`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 0.5);

/** Milliseconds from spawning `muster serve` on `dataDir` to its first answered call. */
async function timeToFirstCall(dataDir: string): Promise<{ ms: number; server: MusterProcess; url: string }> {
  const started = performance.now();
  const server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
  const line = await server.line((text) => text.includes("muster is serving"), 60_000);
  const { url } = JSON.parse(line) as { url: string };
  await createRegistryClient({ baseUrl: url }).status({});
  return { ms: performance.now() - started, server, url };
}

/** The no-op grpc-js yardstick; `answerFile` holds the bytes it answers with (default: an empty message). */
async function startNoopGrpcServer(answerFile?: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ["bench/noop-grpc-server.mjs", ...(answerFile === undefined ? [] : [answerFile])], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve) => child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

async function registerMany(client: RegistryClient, count: number, services: number): Promise<void> {
  for (let start = 0; start < count; start += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - start) }, (_, i) => {
      const n = start + i;
      return client.register({ instance: { service: `svc-${n % services}`, id: `i${n}`, address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:8080`, version: "1.2.3", labels: { zone: Math.floor(n / services) % 2 === 0 ? "a" : "b", tier: "web" }, tags: ["grpc"], ttl: durationFromMs(3_600_000) } });
    }));
  }
}

/**
 * Resident memory (MiB, sampled each second) while `count` instances
 * (`i<n>` of `svc-<n % services>`) heartbeat, each every 10 s, for
 * `seconds`: what a registry holding them costs in use, not only at rest.
 */
async function residentWhileHeartbeating(client: RegistryClient, pid: number | undefined, count: number, services: number, seconds: number): Promise<{ median: number; largest: number }> {
  const beatEveryS = 10;
  const tickMs = 10;
  const perTick = count / beatEveryS / (1_000 / tickMs);
  let next = 0;
  const failures: unknown[] = [];
  const beats = setInterval(() => {
    for (let i = 0; i < perTick; i++, next++) {
      const n = next % count;
      client.heartbeat({ service: `svc-${n % services}`, id: `i${n}` }).catch((error: unknown) => failures.push(error));
    }
  }, tickMs);
  const samples: number[] = [];
  for (let second = 0; second < seconds; second++) {
    await sleep(1_000);
    samples.push(residentMiB(pid));
  }
  clearInterval(beats);
  expect(failures).toEqual([]);
  return { median: median(samples), largest: Math.max(...samples) };
}

it("measures the registry", async () => {
  record("machine", `${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
  const load = (url: string, method: string, message: Uint8Array): Load => ({ url, method, message, connections: 20, streamsPerConnection: 10, seconds });

  // This process's first call is slow on its own (its client code is cold): made here, it times nothing.
  const warmup = await startNoopGrpcServer();
  await createRegistryClient({ baseUrl: warmup.url }).heartbeat({ service: "s", id: "i" });
  warmup.stop();
  // Start-up against a bare `node -e 0`: each round times the four back to back, so all of them see the machine as it is then.
  const bareStarts: number[] = [];
  const firstStarts: number[] = [];
  const empty: number[] = [];
  const noopStarts: number[] = [];
  for (let i = 0; i < 11; i++) {
    const bareStarted = performance.now();
    spawnSync(process.execPath, ["-e", "0"]);
    bareStarts.push(performance.now() - bareStarted);
    // What the build does last: a code cache as deep as a served call makes it (scripts/warm-code-cache.mjs).
    rmSync(codeCacheFile(join(musterBin, "..", "main.cjs")), { force: true });
    spawnSync(process.execPath, ["scripts/warm-code-cache.mjs", musterBin], { stdio: "inherit" });
    const first = await timeToFirstCall(await tempDataDir());
    firstStarts.push(first.ms);
    await first.server.kill("SIGINT");
    const { ms, server } = await timeToFirstCall(await tempDataDir());
    empty.push(ms);
    await server.kill("SIGKILL");
    // The same for the yardstick, which stores nothing: what any Node gRPC server pays before its first answer.
    const started = performance.now();
    const noop = await startNoopGrpcServer();
    await createRegistryClient({ baseUrl: noop.url }).heartbeat({ service: "s", id: "i" });
    noopStarts.push(performance.now() - started);
    noop.stop();
  }
  const bare = median(bareStarts);
  record("start to first answered call, empty data dir, the first start after a build (median of 11)", `${median(firstStarts).toFixed(0)} ms = ${(median(firstStarts) / bare).toFixed(2)}x node -e 0`);
  record("start to first answered call, empty data dir, the starts after it (median of 11)", `${median(empty).toFixed(0)} ms = ${(median(empty) / bare).toFixed(2)}x node -e 0 (${bare.toFixed(0)} ms); the no-op grpc-js server: ${median(noopStarts).toFixed(0)} ms = ${(median(noopStarts) / bare).toFixed(2)}x`);

  // The yardstick.
  const heartbeat = toBinary(HeartbeatRequestSchema, create(HeartbeatRequestSchema, { service: "svc-1", id: "i1" }));
  const runYardstick = async () => {
    const noop = await startNoopGrpcServer();
    const result = await runH2load(load(noop.url, "muster.v1.RegistryService/Heartbeat", heartbeat));
    noop.stop();
    return result;
  };
  const baseline = await runYardstick();
  record("no-op @grpc/grpc-js unary, 20 connections x 10 streams", `${baseline.requestsPerSecond.toFixed(0)} req/s, p50 ${baseline.p50Ms.toFixed(1)} ms, p99 ${baseline.p99Ms.toFixed(1)} ms`);

  // The registry, with 10,000 instances in 100 services and 100 idle watchers.
  const dataDir = await tempDataDir();
  const { server, url } = await timeToFirstCall(dataDir);
  const client = createRegistryClient({ baseUrl: url });
  const idle = residentMiB(server.pid);
  await registerMany(client, 10_000, 100);
  const watching = new AbortController();
  // One signal for the 100 idle watchers: past 10 listeners Node warns of a leak that is not one.
  setMaxListeners(100, watching.signal);
  let idleWatcherMessages = 0;
  for (let i = 0; i < 100; i++) {
    void (async () => {
      for await (const message of client.watch({ service: `svc-${i}` }, { signal: watching.signal })) idleWatcherMessages += message.events.length > 0 ? 1 : 0;
    })().catch(() => undefined);
  }
  await sleep(2_000);
  expect(idleWatcherMessages).toBe(100);
  record("resident memory: empty / 10,000 instances + 100 watchers", `${idle.toFixed(0)} MiB / ${residentMiB(server.pid).toFixed(0)} MiB`);
  // What is left once the registry has been quiet long enough to hand the burst's memory back (idleMemoryReleaseSeconds, 5 by default).
  await sleep(12_000);
  record("the same, 12 s later, quiet", `${residentMiB(server.pid).toFixed(0)} MiB`);
  const beating = await residentWhileHeartbeating(client, server.pid, 10_000, 100, 30);
  record("the same while every instance heartbeats each 10 s (1,000/s) for 30 s: median / largest", `${beating.median.toFixed(0)} / ${beating.largest.toFixed(0)} MiB`);

  const ratio = (rps: number) => `${((rps / baseline.requestsPerSecond) * 100).toFixed(0)}% of grpc-js`;
  await client.heartbeat({ service: "svc-1", id: "i1" });
  const beats = await runH2load(load(url, "muster.v1.RegistryService/Heartbeat", heartbeat));
  record("Heartbeat (no change, not written)", `${beats.requestsPerSecond.toFixed(0)} req/s (${ratio(beats.requestsPerSecond)}), p50 ${beats.p50Ms.toFixed(1)} ms, p99 ${beats.p99Ms.toFixed(1)} ms, ${beats.failed} failed`);
  // Most gRPC clients send a deadline with every call.
  const beatsWithDeadline = await runH2load({ ...load(url, "muster.v1.RegistryService/Heartbeat", heartbeat), headers: { "grpc-timeout": "10S" } });
  record("Heartbeat, each call with a deadline (grpc-timeout 10S)", `${beatsWithDeadline.requestsPerSecond.toFixed(0)} req/s (${ratio(beatsWithDeadline.requestsPerSecond)}), p50 ${beatsWithDeadline.p50Ms.toFixed(1)} ms, p99 ${beatsWithDeadline.p99Ms.toFixed(1)} ms, ${beatsWithDeadline.failed} failed`);

  const discover = toBinary(DiscoverRequestSchema, create(DiscoverRequestSchema, { service: "svc-7", selector: "zone=a" }));
  const discovered = await client.discover({ service: "svc-7", selector: "zone=a" });
  expect(discovered.instances).toHaveLength(50);
  // A second yardstick for Discover: grpc-js answering the same 50 instances' bytes without doing anything.
  const answerFile = join(tmpdir(), `muster-discover-answer-${process.pid}.bin`);
  writeFileSync(answerFile, toBinary(DiscoverResponseSchema, discovered));
  const sameBytes = await startNoopGrpcServer(answerFile);
  const sameBytesLoad = await runH2load(load(sameBytes.url, "muster.v1.RegistryService/Discover", discover));
  record(`no-op @grpc/grpc-js answering the same ${toBinary(DiscoverResponseSchema, discovered).length}-byte Discover response`, `${sameBytesLoad.requestsPerSecond.toFixed(0)} req/s, p50 ${sameBytesLoad.p50Ms.toFixed(1)} ms, p99 ${sameBytesLoad.p99Ms.toFixed(1)} ms`);
  const found = await runH2load(load(url, "muster.v1.RegistryService/Discover", discover));
  record("Discover (1 of 100 services, selector, 50 of 10,000 instances), 200 concurrent", `${found.requestsPerSecond.toFixed(0)} req/s (${ratio(found.requestsPerSecond)}; ${((found.requestsPerSecond / sameBytesLoad.requestsPerSecond) * 100).toFixed(0)}% of grpc-js with the same answer), p50 ${found.p50Ms.toFixed(1)} ms, p99 ${found.p99Ms.toFixed(1)} ms`);
  // Every heartbeat of an instance an answer shows changes that answer (its last_heartbeat_at), so reuse stops until the next Discover.
  const beatShown = toBinary(HeartbeatRequestSchema, create(HeartbeatRequestSchema, { service: "svc-7", id: "i7" }));
  expect(discovered.instances.map((instance) => instance.id)).toContain("i7");
  const [foundWhileBeating, shownBeats] = await Promise.all([
    runH2load(load(url, "muster.v1.RegistryService/Discover", discover)),
    runH2load({ ...load(url, "muster.v1.RegistryService/Heartbeat", beatShown), connections: 10, streamsPerConnection: 1, requestsPerSecondPerConnection: 100 }),
  ]);
  record("Discover, the same, while one instance it shows heartbeats (paced at 1,000/s)", `${foundWhileBeating.requestsPerSecond.toFixed(0)} req/s (${ratio(foundWhileBeating.requestsPerSecond)}), p50 ${foundWhileBeating.p50Ms.toFixed(1)} ms, p99 ${foundWhileBeating.p99Ms.toFixed(1)} ms; ${shownBeats.requestsPerSecond.toFixed(0)} heartbeats/s`);
  // Latency at a steady load rather than in saturation, where it is only concurrency / throughput (Little's law).
  // (h2load's own pacing with 200 single-stream connections adds 10-20 ms even to a no-op server, so the 200 callers are 20 x 10 here too.)
  // h2load starts the 20 connections' pacing timers together, so 20 requests land at once every 10 ms: the yardstick answering the
  // same bytes under the same pacing shows what that costs on this machine before any registry work.
  const pacedLoad = (target: string): Load => ({ ...load(target, "muster.v1.RegistryService/Discover", discover), requestsPerSecondPerConnection: discoverRate / 20 });
  const sameBytesPaced = await runH2load(pacedLoad(sameBytes.url));
  sameBytes.stop();
  rmSync(answerFile);
  const paced = await runH2load(pacedLoad(url));
  record(`no-op @grpc/grpc-js answering the same Discover response, paced at ${discoverRate} req/s, 200 concurrent callers`, `${sameBytesPaced.requestsPerSecond.toFixed(0)} req/s, p50 ${sameBytesPaced.p50Ms.toFixed(1)} ms, p99 ${sameBytesPaced.p99Ms.toFixed(1)} ms`);
  record(`Discover paced at ${discoverRate} req/s, 200 concurrent callers`, `${paced.requestsPerSecond.toFixed(0)} req/s, p50 ${paced.p50Ms.toFixed(1)} ms, p99 ${paced.p99Ms.toFixed(1)} ms`);

  // Watch delivery: 1,000 watchers of one service, 100 changes; first read lean, then through full Connect clients.
  watching.abort();
  const measureDelivery = async (watch: (onMessage: (message: WatchResponse, receivedAt: number) => void) => () => void, idPrefix: string) => {
    const received = new Map<bigint, number[]>();
    let ready = 0;
    const stop = watch((message, receivedAt) => {
      if (message.snapshot) ready++;
      for (const event of message.events) received.get(event.revision)?.push(receivedAt);
    });
    while (ready < 1_000) await sleep(50);
    const latencies: number[] = [];
    for (let i = 0; i < 100; i++) {
      const pending: number[] = [];
      const revision = (await client.status({})).revision + 1n;
      received.set(revision, pending);
      const sent = performance.now();
      const { revision: written } = await client.register({ instance: { service: "watched", id: `${idPrefix}${i}`, address: "10.0.0.1:80", ttl: durationFromMs(3_600_000) } });
      if (written !== revision) throw new Error("another write interleaved");
      while (pending.length < 1_000) await sleep(2);
      latencies.push(...pending.map((at) => at - sent));
      await sleep(20);
    }
    stop();
    return latencies.sort((a, b) => a - b);
  };
  const lean = await measureDelivery((onMessage) => openLeanWatchers(url, { service: "watched" }, 1_000, 10, onMessage).close, "lean-");
  record("Watch delivery, change made -> event received, 1,000 watchers x 100 changes (lean reader)", `p50 ${percentile(lean, 0.5).toFixed(1)} ms, p99 ${percentile(lean, 0.99).toFixed(1)} ms`);
  const full = await measureDelivery((onMessage) => {
    const connections = Array.from({ length: 10 }, () => createRegistryClient({ baseUrl: url }));
    const abort = new AbortController();
    setMaxListeners(1_000, abort.signal);
    for (let w = 0; w < 1_000; w++) {
      void (async () => {
        for await (const message of (connections[w % 10] as RegistryClient).watch({ service: "watched" }, { signal: abort.signal })) onMessage(message, performance.now());
      })().catch(() => undefined);
    }
    return () => abort.abort();
  }, "sdk-");
  record("Watch delivery, the same through 1,000 Connect-ES clients in one process", `p50 ${percentile(full, 0.5).toFixed(1)} ms, p99 ${percentile(full, 0.99).toFixed(1)} ms`);

  // Durable registrations: each request has an empty id, so each is a new instance, synced.
  // The machine drifts over the minute since the first yardstick, so Register is also compared with one measured just before it.
  const registration = toBinary(RegisterRequestSchema, create(RegisterRequestSchema, { instance: { service: "bench", address: "10.0.0.1:80", ttl: durationFromMs(3_600_000) } }));
  const nearBaseline = await runYardstick();
  const registered = await runH2load(load(url, "muster.v1.RegistryService/Register", registration));
  const status = await client.status({});
  record("Register, durable (new instance each, group commit)", `${registered.requestsPerSecond.toFixed(0)} req/s (${ratio(registered.requestsPerSecond)}; ${((registered.requestsPerSecond / nearBaseline.requestsPerSecond) * 100).toFixed(0)}% of the ${nearBaseline.requestsPerSecond.toFixed(0)} req/s grpc-js measured just before it), p50 ${registered.p50Ms.toFixed(1)} ms, p99 ${registered.p99Ms.toFixed(1)} ms; ${(Number(status.committedChanges) / Number(status.commits)).toFixed(1)} changes per synced commit`);
  await server.kill("SIGTERM");

  // 100,000 persisted instances: start-up and memory.
  const big = await tempDataDir();
  const store = await LevelStore.open(big);
  for (let start = 0; start < 100_000; start += 10_000) {
    const puts = Array.from({ length: 10_000 }, (_, i) => {
      const n = start + i;
      return { service: `svc-${n % 1000}`, id: `i${n}`, address: "10.0.0.1:8080", version: "1.2.3", tags: ["grpc"], labels: { zone: "a", tier: "web" }, zone: "", weight: 1, capabilities: [], ttlMs: 10_000, deregisterAfterMs: 60_000, health: "healthy" as const, registeredAt: Date.now(), lastHeartbeatAt: Date.now(), revision: start + i + 1 };
    });
    await store.commit({ revision: start + 10_000, puts, deletes: [], events: [], dropEventsThrough: 0 });
  }
  await store.close();
  const loadedStarts: number[] = [];
  let bigRss = 0;
  for (let i = 0; i < 3; i++) {
    const loaded = await timeToFirstCall(big);
    loadedStarts.push(loaded.ms);
    bigRss = residentMiB(loaded.server.pid);
    await loaded.server.kill("SIGKILL");
  }
  record("start to first answered call, 100,000 persisted instances (median of 3)", `${median(loadedStarts).toFixed(0)} ms (${loadedStarts.map((ms) => ms.toFixed(0)).join(", ")})`);
  record("resident memory, 100,000 instances", `${bigRss.toFixed(0)} MiB, about ${(((bigRss - idle) * 1024 * 1024) / 100_000).toFixed(0)} bytes per instance`);

  console.log(`\n| measured with BENCH_SECONDS=${seconds} npm run bench | result |\n|---|---|\n${rows.map(([what, value]) => `| ${what} | ${value} |`).join("\n")}\n`);
  expect(beats.failed + beatsWithDeadline.failed + found.failed + foundWhileBeating.failed + shownBeats.failed + paced.failed + sameBytesPaced.failed + registered.failed).toBe(0);
});
