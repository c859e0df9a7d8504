import { cp } from "node:fs/promises";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Level } from "level";
import { describe, expect, it } from "vitest";
import { EventType, HealthStatus } from "../gen/muster/v1/registry_pb.js";
import type { RegistryEvent } from "../src/domain/event.js";
import type { HistoryBranch } from "../src/domain/registry.js";
import { makeRecord, type InstanceRecord } from "../src/domain/instance.js";
import { LevelStore } from "../src/store/level-store.js";
import { StoreError } from "../src/store/store-error.js";
import { grpcClient, type RegistryClient } from "./support/clients.js";
import { FakeClock } from "./support/fake-clock.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";
import { WatchView } from "./support/watch-view.js";

const longTtl = durationFromMs(600_000);

describe("durability", () => {
  it("keeps every acknowledged write through SIGKILL, and a resuming watcher gets exactly what it missed", async () => {
    const dataDir = await tempDataDir();
    const first = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    const client = grpcClient(await first.ready());

    const watcher = new WatchView();
    const abort = new AbortController();
    const watching = (async () => {
      for await (const message of client.watch({ includeUnhealthy: true }, { signal: abort.signal })) watcher.apply(message);
    })().catch(() => undefined);

    const acknowledged = new Map<string, bigint>();
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const { instance } = await client.register({ instance: { service: `svc-${i % 4}`, id: `i-${i}`, address: `10.0.0.${i + 1}:80`, ttl: longTtl } });
        acknowledged.set(`svc-${i % 4}/i-${i}`, instance?.revision ?? 0n);
      }),
    );
    await expect.poll(() => watcher.revision).toBe(40n);
    abort.abort();
    await watching;
    const resumeFrom = watcher.revision;

    const missedWrites = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => client.register({ instance: { service: "late", id: `l-${i}`, address: "10.9.9.9:80", ttl: longTtl } }).then((r) => r.revision)),
      ...Array.from({ length: 5 }, (_, i) => client.deregister({ service: `svc-${i % 4}`, id: `i-${i}` }).then((r) => r.revision)),
      client.heartbeat({ service: "svc-3", id: "i-7", status: HealthStatus.DEGRADED }).then((r) => r.revision),
    ]);
    const killed = await first.kill("SIGKILL");
    expect(killed.signal).toBe("SIGKILL");

    const second = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    const after = grpcClient(await second.ready());
    try {
      const found = await after.discover({ includeUnhealthy: true });
      const present = new Map(found.instances.map((i) => [`${i.service}/${i.id}`, i]));
      for (let i = 0; i < 5; i++) acknowledged.delete(`svc-${i % 4}/i-${i}`);
      for (const key of acknowledged.keys()) expect(present.has(key), key).toBe(true);
      for (let i = 0; i < 20; i++) expect(present.has(`late/l-${i}`)).toBe(true);
      expect(present.get("svc-3/i-7")?.health).toBe(HealthStatus.DEGRADED);
      expect(found.instances).toHaveLength(acknowledged.size + 20);
      expect(found.revision).toBe(66n);

      const resumed = await new WatchReader(after.watch({ includeUnhealthy: true, sinceRevision: resumeFrom })).next();
      expect(resumed.snapshot).toBe(false);
      expect(resumed.events.map((e) => e.revision)).toEqual(Array.from({ length: 26 }, (_, i) => 41n + BigInt(i)));
      expect(resumed.events.map((e) => e.revision).sort()).toEqual(missedWrites.sort());
      expect(resumed.events.filter((e) => e.type === EventType.DEREGISTERED)).toHaveLength(5);
    } finally {
      await second.kill("SIGKILL");
    }
  });

  it("commits concurrent writes in groups: one synced batch carries many acknowledged writes", async () => {
    const client = (await TestRegistry.start()).client();
    await Promise.all(Array.from({ length: 400 }, (_, i) => client.register({ instance: { service: "burst", id: `b${i}`, address: "10.0.0.1:80" } })));
    const status = await client.status({});
    expect(status.committedChanges).toBe(400n);
    expect(status.revision).toBe(400n);
    expect(Number(status.commits)).toBeLessThan(100);
    console.log(`group commit: 400 concurrent registrations in ${status.commits} synced commits`);
  });

  it("gives every loaded instance a fresh ttl, so a registry restart expires nobody", async () => {
    const clock = new FakeClock();
    const server = await TestRegistry.start({ registry: { clock } });
    await server.client().register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.1:80", ttl: durationFromMs(2_000) } });
    await clock.advance(1_900);
    await server.restart();
    await clock.advance(1_900);
    const client = server.client();
    expect((await client.discover({ service: "jobs" })).instances.map((i) => i.health)).toEqual([HealthStatus.HEALTHY]);
    await clock.advance(200);
    expect((await client.discover({ service: "jobs", includeUnhealthy: true })).instances.map((i) => i.health)).toEqual([HealthStatus.UNHEALTHY]);
  });

  it("keeps the revision counter across restarts", async () => {
    const server = await TestRegistry.start();
    await server.client().register({ instance: { service: "a", id: "1", address: "10.0.0.1:80" } });
    await server.client().deregister({ service: "a", id: "1" });
    await server.restart();
    const { revision } = await server.client().register({ instance: { service: "a", id: "1", address: "10.0.0.1:80" } });
    expect(revision).toBe(3n);
  });

  it("refuses a data directory holding an entry it cannot read, with a sentence saying so", async () => {
    const dataDir = await tempDataDir();
    const db = new Level(dataDir);
    await db.put("i:a/1", "{not json");
    await db.close();
    const error = await LevelStore.open(dataDir).then((store) => store.load().finally(() => store.close())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe("corrupt");
    expect((error as StoreError).message).toContain(`data directory ${dataDir} is damaged`);

    // A history that is not one, such as a bare number, is damage too: watchers would be told a history it is not.
    const otherDir = await tempDataDir();
    const other = new Level(otherDir);
    await other.put("m:history", "12345");
    await other.close();
    const historyError = await LevelStore.open(otherDir).then((store) => store.load().finally(() => store.close())).catch((e: unknown) => e);
    expect([historyError instanceof StoreError && historyError.code, (historyError as Error).message]).toEqual(["corrupt", expect.stringContaining("m:history")]);
    await other.open();
    await other.put("m:history", JSON.stringify({ id: "abc", copied: false, ancestors: [{ id: "def" }] }));
    await other.close();
    const forkError = await LevelStore.open(otherDir).then((store) => store.load().finally(() => store.close())).catch((e: unknown) => e);
    expect([forkError instanceof StoreError && forkError.code, (forkError as Error).message]).toEqual(["corrupt", expect.stringContaining("m:history")]);
  });

  it("reads a history written before histories kept several ancestors, with its one fork, and before places were kept", async () => {
    const dataDir = await tempDataDir();
    const db = new Level(dataDir);
    await db.put("m:history", JSON.stringify({ id: "0123456789abcdef", copied: false, forkedFrom: { id: "fedcba9876543210", revision: 7 } }));
    await db.close();
    const store = await LevelStore.open(dataDir);
    const { history, moved } = await store.load().finally(() => store.close());
    // Nor does it count as a copy for want of a place: it is taken to be where it always was.
    expect([history, moved]).toEqual([{ id: "0123456789abcdef", copied: false, ancestors: [{ id: "fedcba9876543210", revision: 7 }] }, false]);
  });

  it("gives a copy of a data directory, opened beside the original, a history of its own branched where the copy was made", async () => {
    const instance = (id: string) => ({ service: "a", id, address: "10.0.0.1:80", ttl: longTtl });
    const dataDir = await tempDataDir();
    const first = await TestRegistry.start({ dataDir });
    await first.client().register({ instance: instance("1") });
    const history = (await first.client().status({})).history;
    await first.stop();
    const copyDir = await tempDataDir();
    await cp(dataDir, copyDir, { recursive: true });
    const branches: HistoryBranch[] = [];
    const onHistoryBranched = (branch: HistoryBranch) => branches.push(branch);
    const servers = [await TestRegistry.start({ dataDir, registry: { onHistoryBranched } }), await TestRegistry.start({ dataDir: copyDir, registry: { onHistoryBranched } })];
    const [original, copy] = servers.map((server) => server.client()) as [RegistryClient, RegistryClient];
    // The two go on apart, counting other changes under revision 2.
    await original.register({ instance: instance("2") });
    await copy.register({ instance: instance("3") });
    const copyStatus = await copy.status({});
    const copyHistory = copyStatus.history;
    const originalStatus = await original.status({});
    expect([originalStatus.history, copyHistory === history]).toEqual([history, false]);
    expect([originalStatus.historyForks, copyStatus.historyForks.map((fork) => [fork.history, fork.revision])]).toEqual([[], [[history, 1n]]]);
    // The copy said so as it opened (the log's warning); the original did not.
    expect(branches).toEqual([{ why: "copied", revision: 1, from: history, to: copyHistory }]);
    // A watcher of the original that saw its revision 2 gets a snapshot from the copy; one from before the copy resumes there.
    const ahead = await new WatchReader(copy.watch({ sinceRevision: 2n, history })).next();
    expect([ahead.snapshot, ahead.events.map((event) => event.instance?.id)]).toEqual([true, ["1", "3"]]);
    const behind = await new WatchReader(copy.watch({ sinceRevision: 1n, history })).nextWithEvents();
    expect([behind.snapshot, behind.events.map((event) => event.instance?.id)]).toEqual([false, ["3"]]);
    // Opened again, neither branches again.
    for (const server of servers) await server.stop();
    const reopened = await Promise.all([dataDir, copyDir].map(async (dir) => (await (await TestRegistry.start({ dataDir: dir })).client().status({})).history));
    expect(reopened).toEqual([history, copyHistory]);
  });

  it("after a failed commit that reached the disk whole, puts back the committed state before the next commit", async () => {
    // A sync that fails after LevelDB wrote the batch leaves it on disk though the registry never applied it.
    const record = (id: string, revision: number, version = "1"): InstanceRecord =>
      makeRecord({ service: "a", id, address: "10.0.0.1:80", version, tags: [], labels: {}, zone: "", weight: 1, capabilities: [], ttlMs: 10_000, deregisterAfterMs: 60_000 }, { health: "healthy", registeredAt: 1, lastHeartbeatAt: 1, revision });
    const registered = (instance: InstanceRecord): RegistryEvent => ({ type: "registered", instance, previous: undefined, revision: instance.revision, time: 1 });
    const dataDir = await tempDataDir();
    const store = await LevelStore.open(dataDir);
    const { history } = await store.load();
    const kept = record("kept", 1);
    await store.commit({ revision: 1, puts: [kept], deletes: [], events: [registered(kept)], dropEventsThrough: 0 });
    const failedUpdate = record("kept", 2, "2");
    const failedNew = record("phantom", 3);
    await store.commit({ revision: 3, puts: [failedUpdate, failedNew], deletes: [], events: [{ ...registered(failedUpdate), type: "updated", previous: kept }, registered(failedNew)], dropEventsThrough: 0 });
    const next = record("next", 2);
    const restore = { puts: [kept], deletes: [{ service: "a", id: "phantom" }], eventsAfter: 1, eventsThrough: 3 };
    await store.commit({ revision: 2, puts: [next], deletes: [], events: [registered(next)], dropEventsThrough: 0, restore });
    await store.close();

    const reopened = await LevelStore.open(dataDir);
    const state = await reopened.load();
    await reopened.close();
    expect(state.revision).toBe(2);
    expect(state.instances).toEqual([kept, next]);
    expect(state.events).toEqual([registered(kept), registered(next)]);
    // A data directory keeps the history it was made with; another starts its own.
    expect(state.history).toEqual(history);
    const other = await LevelStore.open(await tempDataDir());
    expect((await other.load().finally(() => other.close())).history.id).not.toBe(history.id);
  });

  it("compacts the event log on disk to the history limit", async () => {
    const server = await TestRegistry.start({ registry: { historyLimit: 5 } });
    for (let i = 0; i < 12; i++) await server.client().register({ instance: { service: "a", id: `i${i}`, address: "10.0.0.1:80" } });
    await server.stop();
    const store = await LevelStore.open(server.dataDir);
    const state = await store.load();
    await store.close();
    expect(state.events.map((e) => e.revision)).toEqual([8, 9, 10, 11, 12]);
    expect(state.instances).toHaveLength(12);
    expect(state.revision).toBe(12);
  });
});
