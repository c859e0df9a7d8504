import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { LeaderLink } from "../src/cli/leader-link.js";
import { EventType } from "../gen/muster/v1/registry_pb.js";
import type { RegistryClient } from "./support/clients.js";
import { FakeClock } from "./support/fake-clock.js";
import { TestRegistry } from "./support/test-registry.js";
import { WatchView } from "./support/watch-view.js";

const second = durationFromMs(1_000);
const ids = Array.from({ length: 10 }, (_, i) => `i${i}`);

async function fleet(): Promise<{ clock: FakeClock; client: RegistryClient; server: TestRegistry }> {
  const clock = new FakeClock();
  const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000 } });
  const client = server.client();
  for (const id of ids) await client.register({ instance: { service: "fleet", id, address: "10.0.0.1:80", ttl: second, deregisterAfter: second } });
  return { clock, client, server };
}

/** Moves time on in 400ms steps, with `alive` heartbeating at each. */
async function advanceWith(clock: FakeClock, client: RegistryClient, alive: readonly string[], ms: number): Promise<void> {
  for (let passed = 0; passed < ms; passed += 400) {
    await clock.advance(Math.min(400, ms - passed));
    for (const id of alive) await client.heartbeat({ service: "fleet", id });
  }
}

const present = async (client: RegistryClient) => (await client.discover({ service: "fleet", includeUnhealthy: true })).instances.length;

describe("mass-expiry protection", () => {
  it("holds removals while most of the fleet is silent, marks them UNHEALTHY, and resumes once heartbeats return", async () => {
    const { clock, client } = await fleet();
    const view = new WatchView();
    const abort = new AbortController();
    void (async () => {
      for await (const message of client.watch({ service: "fleet" }, { signal: abort.signal })) view.apply(message);
    })().catch(() => undefined);

    const alive = ids.slice(0, 4);
    await advanceWith(clock, client, alive, 6_000);
    expect(await present(client)).toBe(10);
    const status = await client.status({});
    expect(status).toMatchObject({ expiryHeld: true, silentInstances: 6, unhealthy: 6 });
    await expect.poll(() => view.instances.size).toBe(4);

    const returning = ids.slice(4, 7);
    await advanceWith(clock, client, [...alive, ...returning], 4_000);
    expect(await present(client)).toBe(7);
    expect((await client.status({})).expiryHeld).toBe(false);
    await expect.poll(() => view.instances.size).toBe(7);
    abort.abort();
  });

  it("lets an operator release the hold, and re-arms once the silence is over", async () => {
    const { clock, client } = await fleet();
    const alive = ids.slice(0, 4);
    await advanceWith(clock, client, alive, 4_000);
    expect((await client.status({})).expiryHeld).toBe(true);
    expect(await present(client)).toBe(10);

    expect((await client.releaseExpiryHold({})).wasHeld).toBe(true);
    await advanceWith(clock, client, alive, 2_000);
    expect(await present(client)).toBe(4);
    expect((await client.status({})).expiryHeld).toBe(false);
    expect((await client.releaseExpiryHold({})).wasHeld).toBe(false);

    await advanceWith(clock, client, alive.slice(0, 1), 4_000);
    expect(await present(client)).toBe(4);
    expect(await client.status({})).toMatchObject({ expiryHeld: true, silentInstances: 3 });
  });

  it("takes the release through a follower, which holds no expiry of its own and sends it to its leader", async () => {
    const { clock, client, server } = await fleet();
    await advanceWith(clock, client, ids.slice(0, 4), 4_000);
    expect((await client.status({})).expiryHeld).toBe(true);
    const link = new LeaderLink(server.url, {}, pino({ level: "silent" }));
    const follower = await TestRegistry.start({ following: link });
    link.start(follower.registry);
    onTestFinished(() => link.stop());
    expect((await follower.client().releaseExpiryHold({})).wasHeld).toBe(true);
    expect((await client.status({})).expiryHeld).toBe(false);
  });

  it("expires small registries normally", async () => {
    const clock = new FakeClock();
    const server = await TestRegistry.start({ registry: { clock } });
    const client = server.client();
    for (const id of ["a", "b"]) await client.register({ instance: { service: "fleet", id, address: "10.0.0.1:80", ttl: second, deregisterAfter: second } });
    await clock.advance(2_500);
    expect(await present(client)).toBe(0);
    expect((await client.status({})).expiryHeld).toBe(false);
  });

  it("still tells watchers about every silent instance going UNHEALTHY while holding", async () => {
    const { clock, client } = await fleet();
    const events: EventType[] = [];
    const abort = new AbortController();
    void (async () => {
      for await (const message of client.watch({ service: "fleet", includeUnhealthy: true, sinceRevision: 10n }, { signal: abort.signal })) {
        events.push(...message.events.map((event) => event.type));
      }
    })().catch(() => undefined);
    await advanceWith(clock, client, [], 5_000);
    await expect.poll(() => events).toEqual(Array.from({ length: 10 }, () => EventType.HEALTH_CHANGED));
    abort.abort();
  });
});
