import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventType, HealthStatus } from "../gen/muster/v1/registry_pb.js";
import type { FilterInit, RegistryClient } from "./support/clients.js";
import { FakeClock } from "./support/fake-clock.js";
import { TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";
import { summarize, WatchView } from "./support/watch-view.js";
import { everyInstance } from "../src/domain/filter.js";
import type { WatchBatch } from "../src/domain/watch-stream.js";

const ttl = durationFromMs(10_000);

async function register(client: RegistryClient, service: string, id: string, labels: Record<string, string> = {}) {
  return client.register({ instance: { service, id, address: "10.1.1.1:80", labels, ttl } });
}

describe("Watch", () => {
  it("starts with a snapshot of the matching instances, then live events", async () => {
    const client = (await TestRegistry.start()).client();
    await register(client, "a", "1");
    await register(client, "b", "1");
    await register(client, "a", "2");
    const watch = new WatchReader(client.watch({ service: "a" }));
    const snapshot = await watch.next();
    expect(snapshot.snapshot).toBe(true);
    expect(snapshot.revision).toBe(3n);
    expect(snapshot.events.map((e) => [e.type, e.instance?.id])).toEqual([[EventType.REGISTERED, "1"], [EventType.REGISTERED, "2"]]);
    await register(client, "b", "2");
    await register(client, "a", "3");
    const live = await watch.nextWithEvents();
    expect(live.snapshot).toBe(false);
    expect(live.events.map((e) => [e.instance?.id, e.revision])).toEqual([["3", 5n]]);
    expect(live.revision).toBe(5n);
  });

  it("resumes with exactly the matching events after since_revision", async () => {
    const client = (await TestRegistry.start()).client();
    for (let i = 1; i <= 6; i++) await register(client, i % 2 === 0 ? "even" : "odd", String(i));
    await client.deregister({ service: "even", id: "2" });
    const watch = new WatchReader(client.watch({ service: "even", sinceRevision: 3n }));
    const missed = await watch.next();
    expect(missed.snapshot).toBe(false);
    expect(missed.events.map((e) => [e.type, e.instance?.id, e.revision])).toEqual([
      [EventType.REGISTERED, "4", 4n],
      [EventType.REGISTERED, "6", 6n],
      [EventType.DEREGISTERED, "2", 7n],
    ]);
    expect(missed.revision).toBe(7n);
    const caughtUp = new WatchReader(client.watch({ sinceRevision: 7n }));
    expect(await caughtUp.next()).toMatchObject({ events: [], revision: 7n, snapshot: false });
  });

  it("misses nothing between Discover and Watch(since_revision = discover.revision)", async () => {
    const client = (await TestRegistry.start()).client();
    await register(client, "a", "1");
    const found = await client.discover({ service: "a" });
    await register(client, "a", "2");
    await client.deregister({ service: "a", id: "1" });
    const watch = new WatchReader(client.watch({ service: "a", sinceRevision: found.revision }));
    const message = await watch.next();
    expect(message.events.map((e) => [e.type, e.instance?.id])).toEqual([[EventType.REGISTERED, "2"], [EventType.DEREGISTERED, "1"]]);
  });

  it("tells a watcher when an instance enters or leaves its filter", async () => {
    const client = (await TestRegistry.start()).client();
    const watch = new WatchReader(client.watch({ selector: "env=prod" }));
    await watch.next();
    await register(client, "a", "1", { env: "dev" });
    await register(client, "a", "1", { env: "prod" });
    const entered = (await watch.nextWithEvents()).events;
    expect(entered.map((e) => [e.type, e.removed])).toEqual([[EventType.UPDATED, false]]);
    await client.heartbeat({ service: "a", id: "1", status: HealthStatus.UNHEALTHY });
    const left = (await watch.nextWithEvents()).events;
    expect(left.map((e) => [e.type, e.removed, e.instance?.health])).toEqual([[EventType.HEALTH_CHANGED, true, HealthStatus.UNHEALTHY]]);
    await client.heartbeat({ service: "a", id: "1", status: HealthStatus.DEGRADED });
    expect((await watch.nextWithEvents()).events.map((e) => [e.removed, e.instance?.health])).toEqual([[false, HealthStatus.DEGRADED]]);
    await register(client, "a", "1", { env: "staging" });
    expect((await watch.nextWithEvents()).events.map((e) => [e.type, e.removed])).toEqual([[EventType.UPDATED, true]]);
  });

  it("sends a fresh snapshot when the log no longer holds since_revision, or it is from the future", async () => {
    const client = (await TestRegistry.start({ registry: { historyLimit: 3 } })).client();
    for (let i = 1; i <= 10; i++) await register(client, "a", `i${i % 4}`, { round: String(i) });
    const compacted = await new WatchReader(client.watch({ sinceRevision: 2n })).next();
    expect(compacted.snapshot).toBe(true);
    expect(compacted.events.map((e) => [e.instance?.id, e.revision])).toEqual([["i0", 8n], ["i1", 9n], ["i2", 10n], ["i3", 7n]]);
    expect(compacted.revision).toBe(10n);
    const retained = await new WatchReader(client.watch({ sinceRevision: 8n })).next();
    expect(retained.snapshot).toBe(false);
    expect(retained.events.map((e) => e.revision)).toEqual([9n, 10n]);
    const future = await new WatchReader(client.watch({ sinceRevision: 99n })).next();
    expect(future.snapshot).toBe(true);
    expect(future.revision).toBe(10n);
  });

  it("splits a large snapshot into messages marked `more` until the last, which carries the revision", async () => {
    const client = (await TestRegistry.start({ registry: { watchLimits: { snapshotChunk: 4, maxBacklog: 100 } } })).client();
    for (let i = 0; i < 10; i++) await register(client, "a", `i${i}`);
    const watch = new WatchReader(client.watch({}));
    const parts = [await watch.next(), await watch.next(), await watch.next()];
    expect(parts.map((p) => [p.snapshot, p.more, p.events.length, p.revision])).toEqual([[true, true, 4, 0n], [false, true, 4, 0n], [false, false, 2, 10n]]);
    const empty = await new WatchReader((await TestRegistry.start()).client().watch({})).next();
    expect([empty.snapshot, empty.more, empty.revision]).toEqual([true, false, 0n]);
  });

  it("sends an idle watcher progress messages carrying the current revision", async () => {
    const clock = new FakeClock();
    const client = (await TestRegistry.start({ registry: { clock, progressIntervalMs: 5_000 } })).client();
    const longTtl = durationFromMs(600_000);
    await client.register({ instance: { service: "a", id: "1", address: "10.1.1.1:80", ttl: longTtl } });
    const watch = new WatchReader(client.watch({ service: "other" }));
    expect((await watch.next()).revision).toBe(1n);
    await client.register({ instance: { service: "a", id: "2", address: "10.1.1.1:80", ttl: longTtl } });
    await clock.advance(5_000);
    await clock.advance(5_000);
    expect(await watch.next()).toMatchObject({ events: [], revision: 2n, snapshot: false });
  });

  it("tells a watcher that asked for heartbeats, once a second, the last heartbeat of each instance it sees; heartbeats have no revision", async () => {
    const clock = new FakeClock();
    const client = (await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000 } })).client();
    await register(client, "a", "1");
    await register(client, "a", "2");
    await register(client, "b", "1");
    const asked = new WatchReader(client.watch({ service: "a", includeHeartbeats: true }));
    const plain = new WatchReader(client.watch({ service: "a" }));
    expect((await asked.next()).snapshot).toBe(true);
    expect((await plain.next()).snapshot).toBe(true);
    await clock.advance(100);
    await client.heartbeat({ service: "a", id: "1" });
    await client.heartbeat({ service: "b", id: "1" });
    await clock.advance(400);
    await client.heartbeat({ service: "a", id: "1" });
    const lastBeat = clock.wallNow();
    await clock.advance(1_000);
    const message = await asked.next();
    expect(message).toMatchObject({ events: [], revision: 3n, snapshot: false });
    expect(message.heartbeats.map(({ service, id, at }) => [service, id, at === undefined ? undefined : timestampMs(at)])).toEqual([["a", "1", lastBeat]]);
    const [shown] = (await client.discover({ service: "a" })).instances;
    expect(shown?.lastHeartbeatAt === undefined ? undefined : timestampMs(shown.lastHeartbeatAt)).toBe(lastBeat);
    await clock.advance(2_000);
    expect(await asked.quietFor(200)).toBe(true);
    expect(await plain.quietFor(50)).toBe(true);
  });

  it("keeps one heartbeat per instance for a watcher that reads late, in one unread message", async () => {
    const clock = new FakeClock();
    const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000 } });
    const client = server.client();
    await register(client, "a", "1");
    await register(client, "a", "2");
    const late = server.registry.watch(everyInstance, 0, { heartbeats: true });
    for (const id of ["1", "2", "1"]) {
      await client.heartbeat({ service: "a", id });
      await clock.advance(1_000);
    }
    await register(client, "a", "3");
    // A heartbeat of the instance a change queued after the unread message made: the message
    // moves behind the change, so a follower hears of 3 before its heartbeat.
    await client.heartbeat({ service: "a", id: "3" });
    await clock.advance(1_000);
    const batches: WatchBatch[] = [];
    for (let i = 0; i < 3; i++) {
      const next = await late.next();
      if (next.done === true) throw new Error("the stream ended");
      batches.push(next.value);
    }
    expect(batches.map((batch) => [batch.snapshot, batch.events.map(({ event }) => event.instance.id), batch.revision, batch.heartbeats?.map(({ id, at }) => [id, at])])).toEqual([
      [true, ["1", "2"], 2, undefined],
      [false, ["3"], 3, undefined],
      [false, [], 3, [["1", clock.wallNow() - 2_000], ["2", clock.wallNow() - 3_000], ["3", clock.wallNow() - 1_000]]],
    ]);
    // Read, it is gone: the next heartbeat starts a message of its own.
    await client.heartbeat({ service: "a", id: "3" });
    await clock.advance(1_000);
    const next = await late.next();
    expect(next.done === true ? undefined : next.value.heartbeats?.map(({ id }) => id)).toEqual(["3"]);
  });

  it("splits heartbeats into messages of at most a snapshot part's size", async () => {
    const clock = new FakeClock();
    const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000, watchLimits: { snapshotChunk: 2, maxBacklog: 10_000 } } });
    const client = server.client();
    for (const id of ["1", "2", "3", "4", "5"]) await register(client, "a", id);
    const watch = new WatchReader(client.watch({ includeHeartbeats: true, sinceRevision: 5n }));
    // Resumed, the stream first hears the last heartbeat of every instance it shows.
    const parts = [];
    for (let i = 0; i < 4; i++) {
      const message = await watch.next();
      parts.push([message.events.length, message.revision, message.heartbeats.map(({ id }) => id)]);
    }
    expect(parts).toEqual([
      [0, 5n, []],
      [0, 5n, ["1", "2"]],
      [0, 5n, ["3", "4"]],
      [0, 5n, ["5"]],
    ]);
  });

  it("ends a watcher that stops reading with RESOURCE_EXHAUSTED and leaves the others alone", async () => {
    const server = await TestRegistry.start({ registry: { watchLimits: { snapshotChunk: 500, maxBacklog: 20 } } });
    const client = server.client();
    const stalled = server.registry.watch(everyInstance, 0);
    const reader = new WatchReader(client.watch({}));
    await reader.next();
    for (let i = 0; i < 25; i++) await register(client, "a", String(i));
    await expect(stalled.next()).rejects.toMatchObject({ code: "resource-exhausted" });
    expect(server.registry.stats().watchers).toBe(1);
    const view = new WatchView();
    while (view.revision < 25n) view.apply(await reader.next());
    expect(view.instances.size).toBe(25);
  });

  it("keeps every watcher's view equal to Discover through random changes", async () => {
    const filters: FilterInit[] = [
      {},
      { service: "a" },
      { selector: "env=prod" },
      { selector: "env notin (prod)", includeUnhealthy: true },
      { version: ">=1.1.0" },
      { includeUnhealthy: true, tags: ["x"] },
    ];
    const operation = fc.oneof(
      fc.record({
        kind: fc.constant("register" as const),
        service: fc.constantFrom("a", "b"),
        id: fc.constantFrom("1", "2", "3"),
        env: fc.constantFrom("prod", "dev"),
        version: fc.constantFrom("1.0.0", "1.2.0"),
        tagged: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant("heartbeat" as const),
        service: fc.constantFrom("a", "b"),
        id: fc.constantFrom("1", "2", "3"),
        status: fc.constantFrom(HealthStatus.UNSPECIFIED, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY),
      }),
      fc.record({ kind: fc.constant("deregister" as const), service: fc.constantFrom("a", "b"), id: fc.constantFrom("1", "2", "3") }),
      fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 100, max: 4_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 5, maxLength: 30 }), async (operations) => {
        const clock = new FakeClock();
        const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000 } });
        const client = server.client();
        const abort = new AbortController();
        const views = filters.map((filter) => {
          const view = new WatchView();
          void (async () => {
            for await (const message of client.watch(filter, { signal: abort.signal })) view.apply(message);
          })().catch(() => undefined);
          return view;
        });
        for (const op of operations) {
          if (op.kind === "register") {
            await client.register({
              instance: { service: op.service, id: op.id, address: "10.0.0.1:1", version: op.version, tags: op.tagged ? ["x"] : [], labels: { env: op.env }, ttl: durationFromMs(1_000), deregisterAfter: durationFromMs(2_000) },
            });
          } else if (op.kind === "heartbeat") {
            await client.heartbeat({ service: op.service, id: op.id, status: op.status }).catch(() => undefined);
          } else if (op.kind === "deregister") {
            await client.deregister({ service: op.service, id: op.id }).catch(() => undefined);
          } else {
            await clock.advance(op.ms);
          }
        }
        for (const [index, filter] of filters.entries()) {
          const found = await client.discover(filter);
          const view = views[index];
          await expect.poll(() => view?.summary()).toEqual(found.instances.map(summarize).sort());
          expect(view?.revision).toBeLessThanOrEqual(found.revision);
          const seen = view?.seenRevisions ?? [];
          expect(new Set(seen).size).toBe(seen.length);
          expect([...seen].sort((x, y) => (x < y ? -1 : 1))).toEqual(seen);
        }
        abort.abort();
        await server.stop();
      }),
      { numRuns: 12 },
    );
  });
});
