import { durationFromMs } from "@bufbuild/protobuf/wkt";
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
    expect(gone).toMatchObject({ code: Code.NotFound });
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
