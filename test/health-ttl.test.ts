import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventType, HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { FakeClock } from "./support/fake-clock.js";
import { TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";

const seconds = (s: number) => durationFromMs(s * 1000);

async function startWithFakeClock() {
  const clock = new FakeClock();
  const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000 } });
  return { clock, server, client: server.client() };
}

describe("health from heartbeats", () => {
  it("marks a silent instance UNHEALTHY after its ttl, then EXPIRED after deregister_after, in order", async () => {
    const { clock, client } = await startWithFakeClock();
    const watch = new WatchReader(client.watch({ service: "jobs", includeUnhealthy: true }));
    await watch.next();
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(5), deregisterAfter: seconds(20) } });
    const registered = (await watch.nextWithEvents()).events[0];

    await clock.advance(4_900);
    expect((await client.discover({ service: "jobs" })).instances).toHaveLength(1);
    await clock.advance(200);
    const unhealthy = (await watch.nextWithEvents()).events[0];
    expect(unhealthy).toMatchObject({ type: EventType.HEALTH_CHANGED, previousHealth: HealthStatus.HEALTHY, removed: false });
    expect(unhealthy?.instance?.health).toBe(HealthStatus.UNHEALTHY);
    expect((await client.discover({ service: "jobs" })).instances).toEqual([]);
    expect((await client.discover({ service: "jobs", includeUnhealthy: true })).instances).toHaveLength(1);

    await clock.advance(19_800);
    expect((await client.discover({ service: "jobs", includeUnhealthy: true })).instances).toHaveLength(1);
    await clock.advance(300);
    const expired = (await watch.nextWithEvents()).events[0];
    expect(expired).toMatchObject({ type: EventType.EXPIRED, removed: true });
    expect([registered?.revision, unhealthy?.revision, expired?.revision]).toEqual([1n, 2n, 3n]);
    expect((await client.discover({ includeUnhealthy: true })).instances).toEqual([]);
    const gone = await client.heartbeat({ service: "jobs", id: "w-1" }).catch((e: unknown) => ConnectError.from(e));
    expect(gone).toMatchObject({ code: Code.NotFound, rawMessage: "instance jobs/w-1 is not registered (unknown or expired): register it again" });
  });

  it("keeps an instance that heartbeats within its ttl, without writing anything", async () => {
    const { clock, client } = await startWithFakeClock();
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(2) } });
    for (let i = 0; i < 10; i++) {
      await clock.advance(1_500);
      const beat = await client.heartbeat({ service: "jobs", id: "w-1" });
      expect(beat.health).toBe(HealthStatus.HEALTHY);
    }
    const found = await client.discover({ service: "jobs" });
    expect(found.instances).toHaveLength(1);
    expect(found.revision).toBe(1n);
    expect(found.instances[0]?.lastHeartbeatAt?.seconds).toBeGreaterThan(found.instances[0]?.registeredAt?.seconds ?? 0n);
  });

  it("brings an UNHEALTHY instance back to HEALTHY on its next heartbeat", async () => {
    const { clock, client } = await startWithFakeClock();
    const watch = new WatchReader(client.watch({ service: "jobs" }));
    await watch.next();
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(1) } });
    await watch.nextWithEvents();
    await clock.advance(1_500);
    expect((await watch.nextWithEvents()).events[0]).toMatchObject({ type: EventType.HEALTH_CHANGED, removed: true });
    const beat = await client.heartbeat({ service: "jobs", id: "w-1" });
    expect(beat.health).toBe(HealthStatus.HEALTHY);
    const back = (await watch.nextWithEvents()).events[0];
    expect(back).toMatchObject({ type: EventType.HEALTH_CHANGED, previousHealth: HealthStatus.UNHEALTHY, removed: false });
    expect(back?.instance?.health).toBe(HealthStatus.HEALTHY);
  });

  it("lets an agent report DEGRADED (still discovered) and UNHEALTHY (not discovered) while heartbeating", async () => {
    const { clock, client } = await startWithFakeClock();
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(2), deregisterAfter: seconds(2) } });
    await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.DEGRADED });
    expect((await client.discover({ service: "jobs" })).instances[0]?.health).toBe(HealthStatus.DEGRADED);
    await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.UNHEALTHY });
    expect((await client.discover({ service: "jobs" })).instances).toEqual([]);
    for (let i = 0; i < 5; i++) {
      await clock.advance(1_500);
      await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.UNHEALTHY });
    }
    expect((await client.discover({ service: "jobs", includeUnhealthy: true })).instances).toHaveLength(1);
  });

  it("keeps registered_at through every change, and stamps last_heartbeat_at at each beat", async () => {
    const { clock, client } = await startWithFakeClock();
    const at = (found: Awaited<ReturnType<typeof client.discover>>) => {
      const instance = found.instances[0];
      return [instance?.version, instance?.health, instance?.registeredAt && timestampMs(instance.registeredAt), instance?.lastHeartbeatAt && timestampMs(instance.lastHeartbeatAt), instance?.revision];
    };
    const all = { service: "jobs", includeUnhealthy: true };
    const registeredAt = (await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", version: "1.0.0", ttl: seconds(5) } })).instance?.registeredAt;
    if (registeredAt === undefined) throw new Error("Register answered without registered_at");
    const t0 = timestampMs(registeredAt);
    await clock.advance(3_000);
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", version: "1.1.0", ttl: seconds(5) } });
    expect(at(await client.discover(all))).toEqual(["1.1.0", HealthStatus.HEALTHY, t0, t0 + 3_000, 2n]);
    await clock.advance(1_000);
    await client.heartbeat({ service: "jobs", id: "w-1" });
    expect(at(await client.discover(all))).toEqual(["1.1.0", HealthStatus.HEALTHY, t0, t0 + 4_000, 2n]);
    await clock.advance(1_000);
    await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.DEGRADED });
    expect(at(await client.discover(all))).toEqual(["1.1.0", HealthStatus.DEGRADED, t0, t0 + 5_000, 3n]);
    await clock.advance(5_000);
    expect(at(await client.discover(all))).toEqual(["1.1.0", HealthStatus.UNHEALTHY, t0, t0 + 5_000, 4n]);
  });

  it("turns an instance UNHEALTHY once and expires it once, however often its check was rescheduled", async () => {
    const { clock, client } = await startWithFakeClock();
    const watch = new WatchReader(client.watch({ service: "jobs", includeUnhealthy: true }));
    await watch.next();
    const instance = { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(5), deregisterAfter: seconds(10) };
    // Each update and each health change schedules a check of its own, on top of the registration's.
    await client.register({ instance: { ...instance, version: "1.0.0" } });
    await clock.advance(1_000);
    await client.register({ instance: { ...instance, version: "1.1.0" } });
    await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.DEGRADED });
    await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.HEALTHY });
    await client.heartbeat({ service: "jobs", id: "w-1", status: HealthStatus.DEGRADED });
    const changes = [];
    while (changes.length < 5) changes.push(...(await watch.nextWithEvents()).events);
    await clock.advance(30_000);
    const events = [];
    for (let message = await watch.nextWithEvents(1_000).catch(() => undefined); message !== undefined; message = await watch.nextWithEvents(300).catch(() => undefined)) {
      events.push(...message.events);
    }
    expect(events.map((event) => [event.type, event.revision, event.previousHealth])).toEqual([
      [EventType.HEALTH_CHANGED, 6n, HealthStatus.DEGRADED],
      [EventType.EXPIRED, 7n, HealthStatus.UNHEALTHY],
    ]);
    expect((await client.discover({ includeUnhealthy: true })).revision).toBe(7n);
  });

  it("expires nobody when the wall clock jumps", async () => {
    const { clock, client } = await startWithFakeClock();
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(5) } });
    clock.jumpWallClock(3_600_000);
    await clock.advance(1_000);
    clock.jumpWallClock(-7_200_000);
    await clock.advance(1_000);
    const found = await client.discover({ service: "jobs" });
    expect(found.instances.map((i) => i.health)).toEqual([HealthStatus.HEALTHY]);
    expect(found.revision).toBe(1n);
  });

  it("applies the default ttl of 10s and deregister_after of 60s", async () => {
    const { clock, client } = await startWithFakeClock();
    const { instance } = await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000" } });
    expect(instance?.ttl?.seconds).toBe(10n);
    expect(instance?.deregisterAfter?.seconds).toBe(60n);
    await clock.advance(9_999);
    expect((await client.discover({ service: "jobs" })).instances).toHaveLength(1);
    await clock.advance(2);
    expect((await client.discover({ service: "jobs" })).instances).toHaveLength(0);
    await clock.advance(59_998);
    expect((await client.discover({ service: "jobs", includeUnhealthy: true })).instances).toHaveLength(1);
    await clock.advance(2);
    expect((await client.discover({ service: "jobs", includeUnhealthy: true })).instances).toHaveLength(0);
  });

  it("expires an instance on the real clock", async () => {
    const server = await TestRegistry.start();
    const client = server.client();
    const watch = new WatchReader(client.watch({ service: "jobs", includeUnhealthy: true }));
    await watch.next();
    const started = Date.now();
    await client.register({ instance: { service: "jobs", id: "w-1", address: "10.0.0.9:7000", ttl: seconds(1), deregisterAfter: seconds(1) } });
    const types = [];
    while (types.length < 3) {
      for (const event of (await watch.nextWithEvents(5000)).events) types.push(event.type);
    }
    expect(types).toEqual([EventType.REGISTERED, EventType.HEALTH_CHANGED, EventType.EXPIRED]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  });
});
