import { createServer } from "node:net";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { LeaderLink } from "../src/cli/leader-link.js";
import { registerMusterResolver } from "../src/client/grpc-js-resolver.js";
import { RegistryAgent } from "../src/client/agent.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher, type WatchUpdate } from "../src/client/watcher.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { callError } from "./support/call-error.js";
import { echoBackend as backend, EchoClient, who } from "./support/echo-backend.js";
import { freePort, fullCollection } from "./support/machine.js";
import { MusterProcess } from "./support/registry-process.js";
import { silentHost } from "./support/silent-host.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// A client given several registries (a leader and its followers) calls one, and moves on to the next when it is unreachable.

const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });
const nobodyAt = async () => `http://127.0.0.1:${await freePort()}`;

/**
 * `muster ls` and a registering `muster register`, given `first` before a
 * registry holding instance "a", go on to that registry; resolves with what
 * the agent said of `first` on its way out.
 */
async function commandsGoOnFrom(first: string, server: TestRegistry): Promise<string> {
  const listed = await MusterProcess.run(["ls", "api", "--registry", `${first},${server.url}`]);
  expect([listed.code, listed.stderr]).toEqual([0, ""]);
  expect(listed.stdout).toMatch(/\ba\b.*10\.0\.0\.1:80/);
  const agent = MusterProcess.spawn(["register", "web", "--address", "10.0.0.9:80", "--registry", `${first},${server.url}`]);
  await agent.line((line) => line.startsWith("registered web/"));
  const { stderr } = await agent.kill("SIGINT");
  return stderr.trim();
}

describe("a client of several registries", () => {
  it("moves on to the next registry after a call finds one unreachable, once for calls that fail together", async () => {
    const server = await TestRegistry.start();
    await server.client().register({ instance: instance("a") });
    const [first, last] = [await nobodyAt(), await nobodyAt()];
    const client = createRegistryClient({ baseUrl: [first, server.url, last] });
    // Five calls fail together on the first: the client moves one step, to the registry that answers, not five.
    const failures = await Promise.all(Array.from({ length: 5 }, () => callError(client.discover({ service: "api" }))));
    expect(failures.map((failure) => failure.code)).toEqual(Array.from({ length: 5 }, () => Code.Unavailable));
    expect((await client.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["a"]);
    expect((await client.register({ instance: instance("b") })).revision).toBe(2n);
    // Errors that are not about reaching it keep it where it is.
    expect((await callError(client.deregister({ service: "api", id: "gone" }))).code).toBe(Code.NotFound);
    expect((await client.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["a", "b"]);
    expect(() => createRegistryClient({ baseUrl: [] })).toThrow("createRegistryClient: baseUrl must name at least one registry");
  });

  it("lets a watcher go on at the next registry from the revision it had, with nothing missed or repeated", async () => {
    const leader = await TestRegistry.start();
    const original = leader.client();
    const link = new LeaderLink(leader.url, {}, pino({ level: "silent" }));
    const follower = await TestRegistry.start({ following: link });
    link.start(follower.registry);
    onTestFinished(() => link.stop());
    // Copying from a snapshot ends the follower's watch streams: let its first copy come before watching it.
    await expect.poll(() => link.state.connected).toBe(true);

    const client = createRegistryClient({ baseUrl: [follower.url, leader.url] });
    let streamBroke: (error: Error) => void = () => undefined;
    const broken = new Promise<Error>((resolve) => (streamBroke = resolve));
    // A long first delay, so that the client's next call is made before the watcher tries again.
    const watcher = new RegistryWatcher(client, { service: "api" }, { backoff: { initialMs: 1_000, maxMs: 1_000 }, onRetry: (error) => streamBroke(error) });
    onTestFinished(() => watcher.close());
    const updates = watcher[Symbol.asyncIterator]();
    const next = async (): Promise<WatchUpdate> => {
      const result = await updates.next();
      if (result.done === true) throw new Error("the watcher ended");
      return result.value;
    };
    expect((await next()).snapshot).toBe(true);
    await original.register({ instance: instance("a") });
    expect((await next()).events.map((event) => [event.instance?.id, event.revision])).toEqual([["a", 1n]]);

    // The follower goes away; changes made meanwhile reach the watcher from the leader, as changes.
    const resuming = next();
    await link.stop();
    await follower.stop();
    // The stream that broke moved the client on: its next call goes to the leader.
    expect((await broken).message).toMatch(/shutting down/);
    expect((await client.status({})).following).toBeUndefined();
    await original.register({ instance: instance("b") });
    await original.deregister({ service: "api", id: "a" });
    const resumed = [await resuming];
    while (resumed.flatMap((update) => update.events).length < 2) resumed.push(await next());
    expect(resumed.map((update) => update.snapshot)).toEqual(resumed.map(() => false));
    expect(resumed.flatMap((update) => update.events.map((event) => [event.instance?.id, event.revision, event.removed]))).toEqual([
      ["b", 2n, false],
      ["a", 3n, true],
    ]);
    expect([...watcher.view.keys()]).toEqual(["api/b"]);
  });

  it("keeps an agent registered through a follower, told of its drain, and on the leader once the follower goes away", async () => {
    const leader = await TestRegistry.start();
    const link = new LeaderLink(leader.url, {}, pino({ level: "silent" }));
    const follower = await TestRegistry.start({ following: link });
    link.start(follower.registry);
    onTestFinished(() => link.stop());
    const drains: boolean[] = [];
    // A 1s ttl: heartbeats every third of a second, through the follower to the leader.
    const agent = new RegistryAgent(createRegistryClient({ baseUrl: [follower.url, leader.url] }), { ...instance("agent"), ttl: durationFromMs(1_000) }, { onDrainChange: (drained) => drains.push(drained) });
    onTestFinished(() => agent.close());
    await agent.until("registered");
    await leader.client().drain({ service: "api", id: "agent", reason: "rack move" });
    await expect.poll(() => drains, { timeout: 5_000 }).toEqual([true]);

    await link.stop();
    await follower.stop();
    // Three ttls later it is still HEALTHY on the leader: its heartbeats moved there.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await leader.client().discover({ service: "api", includeDrained: true })).instances.map((found) => [found.id, HealthStatus[found.health]])).toEqual([["agent", "HEALTHY"]]);
    expect((await leader.client().status({})).unhealthy).toBe(0);
  });

  it("serves the grpc-js resolver (muster:///service) given several registries, and the first unreachable", async () => {
    const server = await TestRegistry.start();
    registerMusterResolver({ registry: [await nobodyAt(), server.url] });
    const address = await backend("a");
    await server.client().register({ instance: { ...instance("a"), service: "echo", address } });
    const client = new EchoClient("muster:///echo", grpc.credentials.createInsecure());
    onTestFinished(() => client.close());
    expect(await who(client)).toBe("a");
    expect(() => registerMusterResolver({ registry: [] })).toThrow("registerMusterResolver: registry must name at least one registry");
  });

  it("is what `muster --registry A,B` talks to: a command goes on to B when A cannot be reached, and says so when neither can", async () => {
    const server = await TestRegistry.start();
    await server.client().register({ instance: instance("a") });
    const nobody = await nobodyAt();
    // `ls` and a registering agent go on to the next; the agent says which one it could not reach.
    expect(await commandsGoOnFrom(nobody, server)).toBe(`muster: cannot reach the registry at ${nobody} (connection refused); start one with 'muster serve' or point --registry (MUSTER_REGISTRY) at it; retrying`);
    const drained = await MusterProcess.run(["drain", "api", "a", "--reason", "rack move"], { MUSTER_REGISTRY: `${nobody}, ${server.url}` });
    expect([drained.code, drained.stderr]).toEqual([0, ""]);
    expect((await server.client().discover({ service: "api", includeDrained: true })).instances[0]?.drain?.reason).toBe("rack move");

    const other = await nobodyAt();
    const neither = await MusterProcess.run(["ls", "--registry", `${nobody},${other}`]);
    expect([neither.code, neither.stderr.trim()]).toEqual([1, `muster: cannot reach the registry at ${nobody} or ${other} (connection refused); start one with 'muster serve' or point --registry (MUSTER_REGISTRY) at it`]);
    const none = await MusterProcess.run(["ls", "--registry", " , "]);
    expect([none.code, none.stderr.trim()]).toEqual([1, `muster: --registry (MUSTER_REGISTRY) must name a registry, such as http://127.0.0.1:6878 (got " , ")`]);
  });

  it("goes on from a registry whose host drops packets, where the call would wait for its deadline, in `muster` and its agents", async () => {
    const server = await TestRegistry.start();
    await server.client().register({ instance: instance("a") });
    const down = await silentHost();
    expect(await commandsGoOnFrom(down, server)).toBe(`muster: cannot reach the registry at ${down} (the connection did not open within 2s; the connection is given up for dead); start one with 'muster serve' or point --registry (MUSTER_REGISTRY) at it; retrying`);
  });

  it("goes back to the first registry once it answers again, for the calls made after", async () => {
    const port = await freePort();
    const leaderDir = await tempDataDir();
    let leader = await TestRegistry.start({ port, dataDir: leaderDir });
    const follower = await TestRegistry.start();
    const client = createRegistryClient({ baseUrl: [leader.url, follower.url], failbackAfterMs: 200 });
    const answeredBy = async () => (await client.status({})).dataDir;
    expect(await answeredBy()).toBe(leaderDir);

    await leader.stop();
    expect((await callError(client.status({}))).code).toBe(Code.Unavailable);
    expect(await answeredBy()).toBe(follower.dataDir);
    // Asked in the background while it is down, it stays down: calls stay on the follower.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await answeredBy()).toBe(follower.dataDir);

    leader = await TestRegistry.start({ port, dataDir: leaderDir });
    await expect.poll(answeredBy, { timeout: 5_000 }).toBe(leaderDir);
    await leader.stop();
  });

  it("stops asking the first registry whether it is back once the client that moved off it is dropped", async () => {
    // A first registry that never comes back: every connection to it is cut at once, and counted.
    let connections = 0;
    const gone = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => void gone.close());
    const address = gone.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    const server = await TestRegistry.start();
    const calls = async () => {
      const client = createRegistryClient({ baseUrl: [`http://127.0.0.1:${address.port}`, server.url], failbackAfterMs: 20 });
      expect((await callError(client.status({}))).code).toBe(Code.Unavailable);
      expect((await client.status({})).dataDir).toBe(server.dataDir);
    };
    await calls();
    await expect.poll(() => connections, { timeout: 5_000 }).toBeGreaterThan(3);
    // The client is out of scope now: once collected, its probes end.
    for (let i = 0; i < 5; i++) {
      fullCollection();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const afterDropping = connections;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(connections).toBe(afterDropping);
  });
});

