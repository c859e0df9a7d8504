import { rm } from "node:fs/promises";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RegistryAgent, type AgentState } from "../src/client/agent.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher } from "../src/client/watcher.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { summarize } from "./support/watch-view.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

/** A registry on a fixed port, so clients keep their address across restarts. */
async function fixedPortRegistry(dataDir?: string) {
  const first = await TestRegistry.start(dataDir === undefined ? {} : { dataDir });
  const port = Number(new URL(first.url).port);
  return { first, port, url: first.url, reopen: (dir: string) => TestRegistry.start({ port, dataDir: dir }) };
}

function recordStates(agent: RegistryAgent): AgentState[] {
  const states: AgentState[] = [];
  agent.on("state", ({ state }) => states.push(state));
  return states;
}

describe("RegistryAgent", () => {
  it("registers, heartbeats within the ttl, reports health, and deregisters on close", async () => {
    const server = await TestRegistry.start();
    const client = createRegistryClient({ baseUrl: server.url });
    const agent = new RegistryAgent(client, { service: "jobs", address: "10.0.0.1:80", ttl: durationFromMs(1_000) });
    const { instance } = await agent.until("registered");
    expect(instance?.id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await client.discover({ service: "jobs" })).instances.map((i) => i.health)).toEqual([HealthStatus.HEALTHY]);
    agent.report(HealthStatus.DEGRADED);
    await expect.poll(async () => (await client.discover({ service: "jobs" })).instances[0]?.health).toBe(HealthStatus.DEGRADED);
    await agent.close();
    expect(agent.state).toBe("closed");
    expect((await client.discover({ includeUnhealthy: true })).instances).toEqual([]);
  });

  it("stays registered through a registry restart with its data kept, and with its data wiped", async () => {
    const { first, url, reopen } = await fixedPortRegistry();
    const agent = new RegistryAgent(createRegistryClient({ baseUrl: url }), { service: "jobs", id: "j-1", address: "10.0.0.1:80", ttl: durationFromMs(1_000) }, { backoff: { initialMs: 50, maxMs: 200 } });
    const states = recordStates(agent);
    await agent.until("registered");

    await first.stop();
    const kept = await reopen(first.dataDir);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await kept.client().discover({ service: "jobs" })).instances.map((i) => i.id)).toEqual(["j-1"]);

    await kept.stop();
    await rm(first.dataDir, { recursive: true, force: true });
    const wiped = await reopen(await tempDataDir());
    await expect.poll(async () => (await wiped.client().discover({ service: "jobs" })).instances.map((i) => i.id), { timeout: 5_000 }).toEqual(["j-1"]);
    expect(states.filter((state) => state === "registered").length).toBeGreaterThanOrEqual(2);
    await agent.close();
  });

  it("retries while the registry is down, then registers again, without throwing", async () => {
    const { first, url, reopen } = await fixedPortRegistry();
    const agent = new RegistryAgent(createRegistryClient({ baseUrl: url }), { service: "jobs", id: "j-1", address: "10.0.0.1:80", ttl: durationFromMs(1_000), deregisterAfter: durationFromMs(1_000) }, { backoff: { initialMs: 50, maxMs: 300 } });
    const states = recordStates(agent);
    await agent.until("registered");
    await first.stop();
    await agent.until("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const back = await reopen(first.dataDir);
    await agent.until("registered");
    await expect.poll(async () => (await back.client().discover({ service: "jobs" })).instances.map((i) => i.health), { timeout: 5_000 }).toEqual([HealthStatus.HEALTHY]);
    expect(states).toContain("reconnecting");
    expect(states.at(-1)).toBe("registered");
    await agent.close();
  });

  it("stops, without throwing, when the registry rejects the instance", async () => {
    const server = await TestRegistry.start();
    const agent = new RegistryAgent(createRegistryClient({ baseUrl: server.url }), { service: "Not Valid", address: "10.0.0.1:80" });
    const { error } = await agent.until("rejected");
    expect(error?.rawMessage).toContain("instance.service");
    await agent.close();
  });
});

describe("RegistryWatcher", () => {
  it("keeps a view equal to Discover through random changes and a registry restart in the middle", async () => {
    const step = fc.record({
      service: fc.constantFrom("a", "b"),
      id: fc.constantFrom("1", "2", "3", "4"),
      action: fc.constantFrom("register", "register", "degrade", "fail", "deregister"),
      env: fc.constantFrom("prod", "dev"),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 20 }), fc.nat(), async (steps, restartSeed) => {
        const { first, url, reopen } = await fixedPortRegistry();
        let server = first;
        // The watcher and the writes each have their own connection, as two processes would: a
        // write sent just after the restart must not join a connection the watcher's retry opened
        // while the registry was down (it fails with ECONNREFUSED).
        const client = createRegistryClient({ baseUrl: url });
        const watcher = new RegistryWatcher(createRegistryClient({ baseUrl: url }), { selector: "env=prod" }, { backoff: { initialMs: 20, maxMs: 100 } });
        let updates = 0;
        const seen: bigint[] = [];
        const following = (async () => {
          for await (const update of watcher) {
            updates++;
            if (!update.snapshot) seen.push(...update.events.map((event) => event.revision));
          }
        })();
        await expect.poll(() => updates).toBeGreaterThan(0);
        const restartAt = restartSeed % steps.length;
        for (const [index, { service, id, action, env }] of steps.entries()) {
          if (index === restartAt) {
            await server.stop();
            server = await reopen(first.dataDir);
          }
          const ttl = durationFromMs(600_000);
          if (action === "register") await client.register({ instance: { service, id, address: "10.0.0.1:80", labels: { env }, ttl } });
          else if (action === "deregister") await client.deregister({ service, id }).catch(() => undefined);
          else await client.heartbeat({ service, id, status: action === "degrade" ? HealthStatus.DEGRADED : HealthStatus.UNHEALTHY }).catch(() => undefined);
        }
        const found = await client.discover({ selector: "env=prod" });
        await expect.poll(() => [...watcher.view.values()].map(summarize).sort(), { timeout: 5_000 }).toEqual(found.instances.map(summarize).sort());
        expect(new Set(seen).size).toBe(seen.length);
        watcher.close();
        await following;
        await server.stop();
      }),
      { numRuns: 8 },
    );
  });

  it("takes a snapshot on resuming at a registry whose data was wiped and has since passed its revision with other changes", async () => {
    const { first, url, reopen } = await fixedPortRegistry();
    const job = (id: string) => ({ instance: { service: "jobs", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) } });
    for (const id of ["old-1", "old-2", "old-3"]) await first.client().register(job(id));
    const watcher = new RegistryWatcher(createRegistryClient({ baseUrl: url }), { service: "jobs" }, { backoff: { initialMs: 20, maxMs: 100 } });
    const snapshots: bigint[] = [];
    const following = (async () => {
      for await (const update of watcher) if (update.snapshot) snapshots.push(update.revision);
    })();
    await expect.poll(() => watcher.revision).toBe(3n);
    const history = (await first.client().status({})).history;
    expect([watcher.history, history]).toEqual([history, expect.stringMatching(/^[0-9a-f]{16}$/)]);

    // Its data wiped, the registry comes back already past revision 3, counting other changes.
    const elsewhere = await TestRegistry.start();
    for (const id of ["new-1", "new-2", "new-3", "new-4", "new-5"]) await elsewhere.client().register(job(id));
    await elsewhere.stop();
    await first.stop();
    const wiped = await reopen(elsewhere.dataDir);
    const found = await wiped.client().discover({ service: "jobs" });
    expect(found.revision).toBe(5n);
    await expect.poll(() => [...watcher.view.keys()].sort(), { timeout: 5_000 }).toEqual(found.instances.map((instance) => `jobs/${instance.id}`).sort());
    expect(snapshots).toEqual([3n, 5n]);
    expect(watcher.history).toBe((await wiped.client().status({})).history);
    expect(watcher.history).not.toBe(history);
    watcher.close();
    await following;
    await wiped.stop();
  });

  it("asked for heartbeats, reports them and keeps its view's last_heartbeat_at equal to Discover's", async () => {
    const server = await TestRegistry.start();
    const client = createRegistryClient({ baseUrl: server.url });
    await client.register({ instance: { service: "jobs", id: "a", address: "10.0.0.1:80", ttl: durationFromMs(600_000) } });
    const watcher = new RegistryWatcher(client, { service: "jobs", includeHeartbeats: true });
    const heard: string[] = [];
    const following = (async () => {
      for await (const update of watcher) for (const { id } of update.heartbeats) heard.push(id);
    })();
    await expect.poll(() => watcher.view.size).toBe(1);
    const registered = watcher.view.get("jobs/a")?.lastHeartbeatAt;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.heartbeat({ service: "jobs", id: "a" });
    const [beaten] = (await client.discover({ service: "jobs" })).instances;
    expect(beaten?.lastHeartbeatAt).not.toEqual(registered);
    await expect.poll(() => watcher.view.get("jobs/a")?.lastHeartbeatAt, { timeout: 5_000 }).toEqual(beaten?.lastHeartbeatAt);
    expect(heard).toEqual(["a"]);
    expect(watcher.revision).toBe(1n);
    watcher.close();
    await following;
  });
});

