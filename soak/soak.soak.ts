import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { RegistryAgent } from "../src/client/agent.js";
import { createRegistryClient, type RegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher, type WatchFilter } from "../src/client/watcher.js";
import { HealthStatus, WatchResponseSchema } from "../gen/muster/v1/registry_pb.js";
import { MusterProcess } from "../test/support/registry-process.js";
import { freePort, residentMiB } from "../test/support/machine.js";
import { tempDataDir } from "../test/support/test-registry.js";
import { summarize, WatchView } from "../test/support/watch-view.js";

const minutes = Number(process.env.SOAK_MINUTES ?? 2);
const instanceCount = Number(process.env.SOAK_INSTANCES ?? 2000);
const watcherCount = Number(process.env.SOAK_WATCHERS ?? 100);
const durationMs = minutes * 60_000;
const ttl = durationFromMs(5_000);
const services = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


/** Registers, heartbeats for a while, falls silent past its ttl (UNHEALTHY, sometimes EXPIRED), comes back; or leaves and rejoins. */
async function flap(client: RegistryClient, index: number, stopAt: number, counts: { flaps: number }): Promise<void> {
  const id = `flap-${index}`;
  const service = `svc-${index % services}`;
  const instance = { service, id, address: `10.1.${index >> 8}.${index & 255}:80`, labels: { zone: "c", role: "flapper" }, version: "1.1.0", ttl, deregisterAfter: durationFromMs(index % 2 === 0 ? 5_000 : 60_000) };
  while (Date.now() < stopAt) {
    await client.register({ instance }).catch(() => undefined);
    for (let beats = 3 + Math.floor(Math.random() * 6); beats > 0 && Date.now() < stopAt; beats--) {
      await sleep(1_500);
      await client.heartbeat({ service, id, status: Math.random() < 0.1 ? HealthStatus.DEGRADED : HealthStatus.UNSPECIFIED }).catch(() => undefined);
    }
    if (Math.random() < 0.3) await client.deregister({ service, id }).catch(() => undefined);
    else await sleep(6_000 + Math.random() * 6_000);
    counts.flaps++;
  }
}

/** An operator draining and undraining steady instances now and then, as for debugging or a rollout. */
async function operate(client: RegistryClient, steady: number, stopAt: number, counts: { drains: number }): Promise<void> {
  const drained: number[] = [];
  const target = (index: number) => ({ service: `svc-${index % services}`, id: `steady-${index}` });
  while (Date.now() < stopAt) {
    await sleep(400);
    // As many undrains as drains, so some instances stay drained across the restarts and some come back.
    if (drained.length > 0 && Math.random() < 0.5) {
      const [index = 0] = drained.splice(Math.floor(Math.random() * drained.length), 1);
      await client.undrain(target(index)).catch(() => undefined);
    } else {
      const index = Math.floor(Math.random() * steady);
      drained.push(index);
      await client.drain({ ...target(index), reason: `soak ${counts.drains}` }).catch(() => undefined);
    }
    counts.drains++;
  }
}

it(`soaks for ${minutes} minutes: ${instanceCount} instances, ${watcherCount} watchers, restarts`, async () => {
  const dataDir = await tempDataDir();
  const addr = `127.0.0.1:${await freePort()}`;
  let server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir, MUSTER_ADDR: addr });
  const url = await server.ready();
  const calls: Record<string, number> = {};
  const counting: Interceptor = (next) => (request) => {
    calls[request.method.name] = (calls[request.method.name] ?? 0) + 1;
    return next(request);
  };
  const client = createRegistryClient({ baseUrl: url, interceptors: [counting] });
  const started = Date.now();
  const stopAt = started + durationMs;

  const flappers = Math.round(instanceCount / 10);
  const agents = Array.from({ length: instanceCount - flappers }, (_, i) =>
    new RegistryAgent(client, { service: `svc-${i % services}`, id: `steady-${i}`, address: `10.0.${i >> 8}.${i & 255}:80`, labels: { zone: ["a", "b"][i % 2] ?? "a" }, version: i % 3 === 0 ? "1.2.0" : "1.0.0", ttl }, { backoff: { initialMs: 100, maxMs: 1_000 } }),
  );
  const filters: WatchFilter[] = [{}, { selector: "zone=a" }, { includeUnhealthy: true }, { version: ">=1.1" }, { selector: "role=flapper", includeUnhealthy: true }, { includeUnhealthy: true, includeDrained: true }];
  const watchers = Array.from({ length: watcherCount }, (_, i) => {
    const filter = i % 7 === 6 ? { service: `svc-${i % services}` } : (filters[i % 7] ?? {});
    const watcher = new RegistryWatcher(client, filter, { backoff: { initialMs: 100, maxMs: 1_000 } });
    const stats = { filter, events: 0, snapshots: 0, problems: [] as string[], contradictions: [] as string[] };
    void (async () => {
      let last = 0n;
      // The view as this watcher's events have built it, to check every event against.
      const view = new WatchView();
      for await (const update of watcher) {
        if (update.snapshot) stats.snapshots++;
        for (const event of update.snapshot ? [] : update.events) {
          if (event.revision <= last) stats.problems.push(`revision ${event.revision} after ${last}`);
          last = event.revision;
          stats.events++;
        }
        view.apply(create(WatchResponseSchema, { snapshot: update.snapshot, events: [...update.events], revision: update.revision }));
        stats.contradictions.push(...view.contradictions.splice(0));
        last = update.revision > last ? update.revision : last;
      }
    })();
    return { watcher, stats };
  });
  const counts = { flaps: 0, drains: 0 };
  const flapping = [...Array.from({ length: flappers }, (_, i) => flap(client, i, stopAt, counts)), operate(client, instanceCount - flappers, stopAt, counts)];

  const memory: { second: number; rss: number; segment: number }[] = [];
  let segment = 0;
  const sampler = setInterval(() => {
    try {
      memory.push({ second: Math.round((Date.now() - started) / 1000), rss: residentMiB(server.pid), segment });
    } catch {
      // the process is between restarts
    }
  }, 5_000);

  const restarts: string[] = [];
  for (const [at, signal] of [[1 / 3, "SIGTERM"], [2 / 3, "SIGKILL"]] as const) {
    await sleep(Math.max(0, started + durationMs * at - Date.now()));
    await server.kill(signal);
    server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir, MUSTER_ADDR: addr });
    await server.ready();
    segment++;
    restarts.push(`${signal} at ${Math.round((Date.now() - started) / 1000)}s`);
  }
  await Promise.all(flapping);
  clearInterval(sampler);
  await sleep(3_000);

  const mismatches: string[] = [];
  for (const { watcher, stats } of watchers) {
    const found = await client.discover(stats.filter);
    const expected = found.instances.map(summarize).sort();
    const deadline = Date.now() + 10_000;
    while (JSON.stringify([...watcher.view.values()].map(summarize).sort()) !== JSON.stringify(expected) && Date.now() < deadline) await sleep(100);
    if (JSON.stringify([...watcher.view.values()].map(summarize).sort()) !== JSON.stringify(expected)) mismatches.push(JSON.stringify(stats.filter));
    watcher.close();
  }
  const status = await client.status({});
  const growth = Array.from({ length: segment + 1 }, (_, index) => segmentGrowth(memory.filter((sample) => sample.segment === index)));
  const peak = Math.max(...memory.map((sample) => sample.rss));
  const summary = {
    minutes,
    instances: instanceCount,
    flappers,
    watchers: watcherCount,
    restarts,
    calls,
    flapCycles: counts.flaps,
    drainsAndUndrains: counts.drains,
    watchedEvents: watchers.reduce((sum, { stats }) => sum + stats.events, 0),
    snapshots: watchers.reduce((sum, { stats }) => sum + stats.snapshots, 0),
    orderingProblems: watchers.flatMap(({ stats }) => stats.problems).length,
    contradictingEvents: watchers.flatMap(({ stats }) => stats.contradictions).length,
    firstContradictions: watchers.flatMap(({ stats }) => stats.contradictions).slice(0, 5),
    viewMismatches: mismatches.length,
    finalRevision: String(status.revision),
    commits: String(status.commits),
    committedChanges: String(status.committedChanges),
    rssPeakMiB: peak.toFixed(0),
    rssGrowthPerProcess: growth.map((ratio) => (ratio === undefined ? "too short to judge" : `${((ratio - 1) * 100).toFixed(0)}%`)),
    rssSeriesMiB: memory.map((sample) => `${sample.second}s:${sample.rss.toFixed(0)}`).join(" "),
  };
  console.log(`SOAK SUMMARY ${JSON.stringify(summary, null, 2)}`);
  await Promise.all(agents.map((agent) => agent.close()));
  await server.kill("SIGTERM");

  expect(mismatches).toEqual([]);
  expect(summary.orderingProblems).toBe(0);
  expect(summary.contradictingEvents).toBe(0);
  const judged = growth.filter((ratio) => ratio !== undefined);
  expect(judged.length, "no registry process ran long enough to judge its memory; raise SOAK_MINUTES").toBeGreaterThan(0);
  for (const ratio of judged) expect(ratio).toBeLessThan(1.25);
});

/**
 * How one registry process's memory moved once warm (15s after it started):
 * the median of the second half of its samples over the median of the first.
 */
function segmentGrowth(samples: readonly { second: number; rss: number }[]): number | undefined {
  const start = samples[0]?.second ?? 0;
  const warm = samples.filter((sample) => sample.second >= start + 15).map((sample) => sample.rss);
  if (warm.length < 4) return undefined;
  const half = Math.floor(warm.length / 2);
  return median(warm.slice(half)) / median(warm.slice(0, half));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
