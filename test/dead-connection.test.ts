import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { RegistryAgent, type AgentStateChange } from "../src/client/agent.js";
import { createRegistryClient, type RegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher } from "../src/client/watcher.js";
import { startBlackholeProxy } from "./support/blackhole-proxy.js";
import { callError } from "./support/call-error.js";
import { followWatcher } from "./support/follow-watcher.js";
import { silentHost } from "./support/silent-host.js";
import { TestRegistry } from "./support/test-registry.js";

// A registry that goes silent without closing the connection (a partition, a frozen host) is
// noticed by TCP only after about 15 minutes. Before the SDK set deadlines and HTTP/2 PINGs, an
// agent stayed "registered" and a watcher heard nothing for all that time.

/** An agent with a ttl of 3s: a heartbeat each second, each with a deadline of a second (the default). */
function agentOf(client: RegistryClient, id: string): RegistryAgent {
  return new RegistryAgent(client, { service: "jobs", id, address: "10.0.0.1:80", ttl: durationFromMs(3_000) }, { backoff: { initialMs: 50, maxMs: 200 } });
}

it("an agent whose connection goes silent reports reconnecting, then heartbeats over a new connection", async () => {
  const server = await TestRegistry.start();
  const proxy = await startBlackholeProxy(server.url);
  // The first heartbeat after the silence ends by its deadline before the PING check is due (2.5s of silence).
  const client = createRegistryClient({ baseUrl: proxy.url, pingIntervalMs: 2_500, pingTimeoutMs: 500 });
  const agent = agentOf(client, "j-1");
  const changes: AgentStateChange[] = [];
  agent.on("state", (change) => changes.push(change));
  await agent.until("registered");

  proxy.blackhole();
  const silencedAt = Date.now();
  await expect.poll(() => changes.map((change) => change.state), { timeout: 5_000 }).toContain("reconnecting");
  expect(changes.find((change) => change.state === "reconnecting")?.error?.code).toBe(Code.DeadlineExceeded);

  // The call after it finds the connection silent, a PING goes unanswered, and the one after that
  // opens a new connection: the registry hears heartbeats again.
  const direct = server.client();
  const lastHeartbeat = async () => {
    const heartbeat = (await direct.discover({ service: "jobs", includeUnhealthy: true })).instances[0]?.lastHeartbeatAt;
    return heartbeat === undefined ? 0 : timestampMs(heartbeat);
  };
  await expect.poll(() => agent.state, { timeout: 8_000 }).toBe("registered");
  await expect.poll(lastHeartbeat).toBeGreaterThan(silencedAt);
  expect(proxy.connections).toBe(2);
  await agent.close();
}, 20_000);

it("a watcher whose stream goes silent notices by PING with the client's defaults, and resumes without a gap", async () => {
  const server = await TestRegistry.start();
  const proxy = await startBlackholeProxy(server.url);
  const retries: ConnectError[] = [];
  const watcher = new RegistryWatcher(createRegistryClient({ baseUrl: proxy.url }), { service: "jobs" }, { onRetry: (error) => retries.push(error) });
  const followed = followWatcher(watcher);
  await expect.poll(() => followed.updates).toBeGreaterThan(0);

  proxy.blackhole();
  const direct = server.client();
  const ttl = durationFromMs(600_000);
  await direct.register({ instance: { service: "jobs", id: "during", address: "10.0.0.2:80", ttl } });
  // Silent since its snapshot: a PING after 10s, given up 5s later.
  await expect.poll(() => [...watcher.view.keys()], { timeout: 25_000, interval: 200 }).toContain("jobs/during");
  expect(retries.map((error) => error.code)).toContain(Code.Unavailable);
  await direct.register({ instance: { service: "jobs", id: "after", address: "10.0.0.3:80", ttl } });
  await expect.poll(() => [...watcher.view.keys()].sort()).toEqual(["jobs/after", "jobs/during"]);
  await followed.stop();
}, 40_000);

it("one client's agent and watcher both come back when their connection goes silent", async () => {
  const server = await TestRegistry.start();
  const proxy = await startBlackholeProxy(server.url);
  // One client for both, as in a service that registers itself and follows its dependencies: its
  // calls open and close streams on the connection while it is being checked.
  const client = createRegistryClient({ baseUrl: proxy.url, pingIntervalMs: 2_500, pingTimeoutMs: 500 });
  const agent = agentOf(client, "j-1");
  const watcher = new RegistryWatcher(client, { service: "db" }, { backoff: { initialMs: 50, maxMs: 200 } });
  const followed = followWatcher(watcher);
  await agent.until("registered");
  await expect.poll(() => followed.snapshots).toBe(1);

  proxy.blackhole();
  await expect.poll(() => agent.state, { timeout: 5_000 }).toBe("reconnecting");
  await server.client().register({ instance: { service: "db", id: "d-1", address: "10.0.0.9:5432", ttl: durationFromMs(600_000) } });
  await expect.poll(() => [...watcher.view.keys()], { timeout: 10_000 }).toEqual(["db/d-1"]);
  await expect.poll(() => agent.state, { timeout: 10_000 }).toBe("registered");
  await followed.stop();
  await agent.close();
}, 30_000);

it("agents sharing one client all come back when their connection goes silent", async () => {
  const server = await TestRegistry.start();
  const proxy = await startBlackholeProxy(server.url);
  // A process that hosts several workers, each registered: one worker's call ends by its deadline
  // while another's call is waiting on the connection's check.
  const client = createRegistryClient({ baseUrl: proxy.url, pingIntervalMs: 2_500, pingTimeoutMs: 500 });
  const agents = Array.from({ length: 5 }, (_, i) => agentOf(client, `j-${i}`));
  await Promise.all(agents.map((agent) => agent.until("registered")));

  proxy.blackhole();
  await expect.poll(() => agents.map((agent) => agent.state), { timeout: 5_000 }).toContain("reconnecting");
  await expect.poll(() => agents.map((agent) => agent.state), { timeout: 10_000 }).toEqual(agents.map(() => "registered"));
  await Promise.all(agents.map((agent) => agent.close()));
}, 30_000);

it("a watcher over HTTP/1.1, where there is no PING, gives up a silent stream and resumes", async () => {
  const server = await TestRegistry.start({ registry: { progressIntervalMs: 300 } });
  const proxy = await startBlackholeProxy(server.url);
  const retries: ConnectError[] = [];
  const client = createRegistryClient({ baseUrl: proxy.url, protocol: "connect", httpVersion: "1.1" });
  const watcher = new RegistryWatcher(client, { service: "jobs" }, { silenceMs: 1_500, onRetry: (error) => retries.push(error) });
  const followed = followWatcher(watcher);
  await expect.poll(() => followed.snapshots).toBe(1);
  // Progress messages every 300ms keep a live stream well inside its 1.5s of allowed silence.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(retries).toEqual([]);

  proxy.blackhole();
  await server.client().register({ instance: { service: "jobs", id: "during", address: "10.0.0.2:80", ttl: durationFromMs(600_000) } });
  await expect.poll(() => [...watcher.view.keys()], { timeout: 8_000 }).toEqual(["jobs/during"]);
  expect(retries.map((error) => [error.code, error.rawMessage])).toContainEqual([Code.Unavailable, "no message from the registry in 1.5s"]);
  await followed.stop();
}, 20_000);

it("a consumer that takes longer than the silence limit over an update keeps its stream", async () => {
  const server = await TestRegistry.start({ registry: { progressIntervalMs: 300 } });
  const proxy = await startBlackholeProxy(server.url);
  const retries: ConnectError[] = [];
  // Over HTTP/1.1 only the silence limit can notice the silenced connection at the end.
  const client = createRegistryClient({ baseUrl: proxy.url, protocol: "connect", httpVersion: "1.1" });
  const watcher = new RegistryWatcher(client, { service: "jobs" }, { silenceMs: 1_000, onRetry: (error) => retries.push(error) });
  const register = (id: string) => server.client().register({ instance: { service: "jobs", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) } });
  const seen: string[] = [];
  let snapshots = 0;
  const following = (async () => {
    for await (const update of watcher) {
      const ids = update.events.map((event) => event.instance?.id ?? "");
      seen.push(...ids);
      if (update.snapshot) snapshots++;
      // The connection goes silent as this piece of work starts, before another message can arrive.
      if (ids.includes("later")) proxy.blackhole();
      // Work, such as a rollout step, that lasts well past the limit.
      if (update.snapshot || ids.includes("later")) await new Promise((resolve) => setTimeout(resolve, 2_500));
    }
  })();
  await expect.poll(() => snapshots).toBe(1);
  await register("meanwhile");
  await expect.poll(() => seen, { timeout: 6_000 }).toEqual(["meanwhile"]);
  expect(retries).toEqual([]);

  // The limit runs out during the work on "later"; it is armed again once the consumer is back.
  await register("later");
  await expect.poll(() => seen).toEqual(["meanwhile", "later"]);
  await register("after");
  await expect.poll(() => seen, { timeout: 8_000 }).toEqual(["meanwhile", "later", "after"]);
  expect(retries.map((error) => error.rawMessage)).toEqual(["no message from the registry in 1s"]);
  watcher.close();
  await following;
}, 20_000);

it("Infinity turns the client's PING check and the watcher's silence limit off", async () => {
  const server = await TestRegistry.start();
  const retries: ConnectError[] = [];
  const client = createRegistryClient({ baseUrl: server.url, pingIntervalMs: Number.POSITIVE_INFINITY });
  const watcher = new RegistryWatcher(client, { service: "jobs" }, { silenceMs: Number.POSITIVE_INFINITY, onRetry: (error) => retries.push(error) });
  const followed = followWatcher(watcher);
  await expect.poll(() => followed.snapshots).toBe(1);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await server.client().register({ instance: { service: "jobs", id: "j-1", address: "10.0.0.1:80", ttl: durationFromMs(600_000) } });
  await expect.poll(() => [...watcher.view.keys()]).toEqual(["jobs/j-1"]);
  // Node fires a timer of Infinity ms after 1 ms: taken at its word, the limit would end the stream at once, again and again.
  expect(retries).toEqual([]);
  await followed.stop();
});

it("gives up a new connection that does not open, as to a host that drops packets", async () => {
  const client = createRegistryClient({ baseUrl: await silentHost(), pingIntervalMs: 500, pingTimeoutMs: 500 });
  const startedAt = Date.now();
  const error = await callError(client.status({}, { timeoutMs: 10_000 }));
  expect(error.code).toBe(Code.Unavailable);
  expect(error.rawMessage).toContain("the connection did not open within 0.5s");
  expect(Date.now() - startedAt).toBeLessThan(5_000);

  // Its own limit, apart from the PINGs': a client of several registries goes on to the next sooner.
  const impatient = createRegistryClient({ baseUrl: await silentHost(), connectTimeoutMs: 300 });
  const again = await callError(impatient.status({}, { timeoutMs: 10_000 }));
  expect([again.code, again.rawMessage]).toEqual([Code.Unavailable, "the connection did not open within 0.3s; the connection is given up for dead"]);
}, 20_000);
