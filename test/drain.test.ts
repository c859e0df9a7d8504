import { Resolver } from "node:dns/promises";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { durationFromMs, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it, onTestFinished } from "vitest";
import { RegistryAgent } from "../src/client/agent.js";
import { registerMusterResolver } from "../src/client/grpc-js-resolver.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckResponse } from "../gen/grpc/health/v1/health_pb.js";
import { EventType, HealthStatus, RegistryService, type Instance } from "../gen/muster/v1/registry_pb.js";
import { callError } from "./support/call-error.js";
import { transports } from "./support/clients.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";
import { answeredBy, echoBackend, EchoClient } from "./support/echo-backend.js";

// Drain takes an instance out of discovery while it keeps running and heartbeating, the way Consul's
// maintenance mode and Eureka's OUT_OF_SERVICE do, until an operator undrains it.

const ttl = durationFromMs(600_000);
const instance = (id: string, address = "10.0.0.1:80") => ({ service: "api", id, address, ttl });
const ids = (instances: readonly Instance[]) => instances.map((found) => found.id);

describe("Drain and Undrain", () => {
  it("take an instance out of Discover and Watch and put it back, through heartbeats, re-registrations and a restart", async () => {
    const server = await TestRegistry.start();
    const client = server.client();
    await client.register({ instance: instance("a") });
    await client.register({ instance: instance("b") });
    const serving = new WatchReader(client.watch({ service: "api", sinceRevision: 2n }));
    const everything = new WatchReader(client.watch({ service: "api", includeDrained: true, sinceRevision: 2n }));

    const drained = await client.drain({ service: "api", id: "a", reason: "debugging a leak" });
    expect(drained.revision).toBe(3n);
    expect(drained.instance?.drain?.reason).toBe("debugging a leak");
    const since = timestampMs(drained.instance?.drain?.since ?? timestampFromMs(0));
    expect(Math.abs(since - Date.now())).toBeLessThan(5_000);
    expect(ids((await client.discover({ service: "api" })).instances)).toEqual(["b"]);
    expect(ids((await client.discover({ service: "api", includeUnhealthy: true })).instances)).toEqual(["b"]);
    const all = await client.discover({ service: "api", includeDrained: true });
    expect(all.instances.map((found) => [found.id, found.drain?.reason])).toEqual([["a", "debugging a leak"], ["b", undefined]]);
    const left = (await serving.nextWithEvents()).events;
    expect(left.map((event) => [event.type, event.instance?.id, event.removed, event.revision])).toEqual([[EventType.DRAIN_CHANGED, "a", true, 3n]]);
    const seen = (await everything.nextWithEvents()).events;
    expect(seen.map((event) => [event.type, event.removed, event.instance?.drain?.reason])).toEqual([[EventType.DRAIN_CHANGED, false, "debugging a leak"]]);

    // The instance's own agent keeps it alive but cannot bring it back.
    expect((await client.heartbeat({ service: "api", id: "a" })).drained).toBe(true);
    expect((await client.heartbeat({ service: "api", id: "b" })).drained).toBe(false);
    expect((await client.register({ instance: instance("a") })).instance?.drain?.reason).toBe("debugging a leak");
    const moved = await client.register({ instance: { ...instance("a", "10.0.0.2:80"), version: "2.0.0" } });
    expect([moved.revision, moved.instance?.drain?.reason]).toEqual([4n, "debugging a leak"]);
    await client.heartbeat({ service: "api", id: "a", status: HealthStatus.DEGRADED });
    expect(ids((await client.discover({ service: "api" })).instances)).toEqual(["b"]);

    // The same reason again changes nothing; another reason is a change that keeps the first time.
    expect((await client.drain({ service: "api", id: "a", reason: "debugging a leak" })).revision).toBe(5n);
    const renamed = await client.drain({ service: "api", id: "a", reason: "waiting for a heap dump" });
    expect(renamed.revision).toBe(6n);
    expect(renamed.instance?.drain?.since).toEqual(drained.instance?.drain?.since);
    const status = await client.status({});
    expect([status.instances, status.drained, status.degraded]).toEqual([2, 1, 1]);
    const followed: [EventType, bigint][] = [];
    while (followed.length < 3) followed.push(...(await everything.nextWithEvents()).events.map((event): [EventType, bigint] => [event.type, event.revision]));
    expect(followed).toEqual([[EventType.UPDATED, 4n], [EventType.HEALTH_CHANGED, 5n], [EventType.DRAIN_CHANGED, 6n]]);

    await server.restart();
    const again = server.client();
    const kept = (await again.discover({ service: "api", includeDrained: true })).instances[0];
    expect([kept?.id, kept?.drain?.reason, kept?.drain?.since]).toEqual(["a", "waiting for a heap dump", drained.instance?.drain?.since]);
    // Resumed across the restart: a watcher of serving instances saw the leave and nothing of what a drained instance did.
    const resumed = new WatchReader(again.watch({ service: "api", sinceRevision: 2n }));
    expect((await resumed.nextWithEvents()).events.map((event) => [event.type, event.revision, event.removed])).toEqual([[EventType.DRAIN_CHANGED, 3n, true]]);
    const resumedAll = new WatchReader(again.watch({ service: "api", includeDrained: true, sinceRevision: 2n }));
    expect((await resumedAll.nextWithEvents()).events.map((event) => [event.type, event.revision, event.removed])).toEqual([
      [EventType.DRAIN_CHANGED, 3n, false],
      [EventType.UPDATED, 4n, false],
      [EventType.HEALTH_CHANGED, 5n, false],
      [EventType.DRAIN_CHANGED, 6n, false],
    ]);

    const undrained = await again.undrain({ service: "api", id: "a" });
    expect([undrained.revision, undrained.instance?.drain]).toEqual([7n, undefined]);
    expect(ids((await again.discover({ service: "api" })).instances)).toEqual(["a", "b"]);
    // It comes back whole, as it is now: degraded, on its new address.
    const back = (await resumed.nextWithEvents()).events;
    expect(back.map((event) => [event.type, event.instance?.id, event.removed, event.instance?.drain, event.instance?.address, event.instance?.health])).toEqual([
      [EventType.DRAIN_CHANGED, "a", false, undefined, "10.0.0.2:80", HealthStatus.DEGRADED],
    ]);
    expect((await resumedAll.nextWithEvents()).events.map((event) => [event.type, event.revision, event.removed])).toEqual([[EventType.DRAIN_CHANGED, 7n, false]]);
    expect((await again.undrain({ service: "api", id: "a" })).revision).toBe(7n);
    expect((await again.status({})).drained).toBe(0);
  });

  it("answer on every protocol and through grpc-js, and refuse bad input with the field and the rule, storing nothing", async () => {
    const server = await TestRegistry.start({ metrics: true });
    const client = server.client();
    for (const [name, make] of Object.entries(transports)) {
      const caller = createClient(RegistryService, make(server.url));
      const id = name.replaceAll(/[^A-Za-z0-9]+/g, "-");
      await caller.register({ instance: instance(id) });
      const drained = await caller.drain({ service: "api", id, reason: `via ${name}` });
      expect([name, drained.instance?.drain?.reason]).toEqual([name, `via ${name}`]);
      expect([name, ids((await caller.discover({ service: "api" })).instances).includes(id)]).toEqual([name, false]);
      expect([name, (await caller.undrain({ service: "api", id })).instance?.drain]).toEqual([name, undefined]);
    }
    const grpcJs = grpcJsClient(server.url);
    onTestFinished(() => grpcJs.close());
    const viaGrpcJs = await grpcJs.unary("Drain", { service: "api", id: "gRPC-over-HTTP-2", reason: "grpc-js" });
    expect((viaGrpcJs.instance as { drain?: { reason: string } }).drain?.reason).toBe("grpc-js");

    const before = server.registry.currentRevision();
    const refusals = [
      [{ service: "api", id: "a", reason: "x".repeat(257) }, Code.InvalidArgument, /^reason: must be at most 256 characters \(got "x{50}/],
      [{ service: "api", id: "gRPC-over-HTTP-2", reason: "two\nlines" }, Code.InvalidArgument, /^reason: must not contain control characters such as newlines \(got "two\\nlines"\)$/],
      [{ service: "api", id: "gRPC-over-HTTP-2", reason: "\u001b[31mred" }, Code.InvalidArgument, /^reason: must not contain control characters/],
      [{ service: "", id: "a" }, Code.InvalidArgument, /^service: is required$/],
      [{ service: "api", id: "" }, Code.InvalidArgument, /^id: is required$/],
      [{ service: "api", id: "nobody" }, Code.NotFound, /^instance api\/nobody is not registered \(unknown or expired\): there is nothing to drain$/],
    ] as const;
    for (const [request, code, message] of refusals) {
      const error = await callError(client.drain(request));
      expect([error.code, error.rawMessage]).toEqual([code, expect.stringMatching(message)]);
    }
    expect((await callError(client.undrain({ service: "api", id: "nobody" }))).code).toBe(Code.NotFound);
    // 256 characters of any script are allowed: the limit counts characters, not UTF-16 units.
    await client.register({ instance: instance("wide") });
    expect((await client.drain({ service: "api", id: "wide", reason: "😀".repeat(256) })).instance?.drain?.reason).toBe("😀".repeat(256));
    expect(server.registry.currentRevision()).toBe(before + 2);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect([/^muster_drained_instances (\d+)$/m.exec(metrics)?.[1], /^muster_events_total\{type="drain-changed"\} (\d+)$/m.exec(metrics)?.[1]]).toEqual(["2", "10"]);
  });

  it("need a write token when the registry requires tokens", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens("write w-3f9c2a7d41b8e6f0\nread r-8a1b77c0e9d24f15\n") });
    const writer = createRegistryClient({ baseUrl: server.url, token: "w-3f9c2a7d41b8e6f0" });
    const reader = createRegistryClient({ baseUrl: server.url, token: "r-8a1b77c0e9d24f15" });
    await writer.register({ instance: instance("a") });
    expect((await callError(reader.drain({ service: "api", id: "a" }))).code).toBe(Code.PermissionDenied);
    expect((await callError(reader.undrain({ service: "api", id: "a" }))).code).toBe(Code.PermissionDenied);
    expect((await writer.drain({ service: "api", id: "a" })).revision).toBe(2n);
  });

  it("leave a drained instance out of the health service and DNS", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0 } });
    const client = server.client();
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    await client.register({ instance: instance("a", "10.0.0.1:80") });
    await client.register({ instance: instance("b", "10.0.0.2:80") });
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.dnsPort ?? 0}`]);
    const statuses = health.watch({ service: "api" })[Symbol.asyncIterator]();
    const nextStatus = async () => ((await statuses.next()).value as HealthCheckResponse | undefined)?.status;
    expect((await nextStatus())).toBe(ServingStatus.SERVING);

    await client.drain({ service: "api", id: "a" });
    expect(await resolver.resolve4("api.service.muster")).toEqual(["10.0.0.2"]);
    await client.drain({ service: "api", id: "b" });
    // The service still exists, with nothing to send traffic to: NODATA, not NXDOMAIN.
    await expect(resolver.resolve4("api.service.muster")).rejects.toMatchObject({ code: "ENODATA" });
    expect((await health.check({ service: "api" })).status).toBe(ServingStatus.NOT_SERVING);
    expect((await nextStatus())).toBe(ServingStatus.NOT_SERVING);
    await client.undrain({ service: "api", id: "b" });
    expect((await nextStatus())).toBe(ServingStatus.SERVING);
    expect(await resolver.resolve4("api.service.muster")).toEqual(["10.0.0.2"]);
  });

  it("reach the instance's agent at its next heartbeat, and at registration when it starts drained", async () => {
    const server = await TestRegistry.start();
    const client = createRegistryClient({ baseUrl: server.url });
    const changes: boolean[] = [];
    const agent = new RegistryAgent(client, { service: "worker", id: "w1", address: "10.0.0.1:80", ttl: durationFromMs(1_000) }, { onDrainChange: (drained) => changes.push(drained) });
    onTestFinished(() => agent.close());
    await agent.until("registered");
    expect(agent.drained).toBe(false);

    const drainedEvent = new Promise<boolean>((resolve) => agent.once("drain", resolve));
    await client.drain({ service: "worker", id: "w1", reason: "rollout" });
    expect(await drainedEvent).toBe(true);
    expect(agent.drained).toBe(true);
    const undrainedEvent = new Promise<boolean>((resolve) => agent.once("drain", resolve));
    await client.undrain({ service: "worker", id: "w1" });
    expect(await undrainedEvent).toBe(false);
    expect(changes).toEqual([true, false]);

    await client.drain({ service: "worker", id: "w1" });
    await agent.close();
    await client.register({ instance: { service: "worker", id: "w2", address: "10.0.0.2:80" } });
    await client.drain({ service: "worker", id: "w2" });
    const restarted = new RegistryAgent(client, { service: "worker", id: "w2", address: "10.0.0.2:80" });
    onTestFinished(() => restarted.close());
    await restarted.until("registered");
    expect(restarted.drained).toBe(true);
  });

  it("move a grpc-js channel's traffic off a drained backend and back", async () => {
    registerMusterResolver();
    const server = await TestRegistry.start();
    const client = server.client();
    const backends = await Promise.all(["a", "b"].map(async (name) => [name, await echoBackend(name)] as const));
    for (const [name, address] of backends) await client.register({ instance: { service: "echo", id: name, address, ttl } });
    const channel = new EchoClient(`muster://${new URL(server.url).host}/echo`, grpc.credentials.createInsecure());
    onTestFinished(() => channel.close());
    expect(await answeredBy(channel, ["a", "b"])).toEqual(["a", "b"]);

    await client.drain({ service: "echo", id: "b", reason: "canary pulled" });
    expect(await answeredBy(channel, ["a"])).toEqual(["a"]);
    await client.undrain({ service: "echo", id: "b" });
    expect(await answeredBy(channel, ["a", "b"])).toEqual(["a", "b"]);
  });

  it("are muster drain and muster undrain on the command line, and show in ls, services and status", async () => {
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() });
    const url = await server.ready();
    onTestFinished(() => server.kill("SIGTERM").then(() => undefined));
    const client = createRegistryClient({ baseUrl: url });
    await client.register({ instance: instance("a") });
    await client.register({ instance: instance("b") });
    const env = { MUSTER_REGISTRY: url, COLUMNS: "200" };

    const drain = await MusterProcess.run(["drain", "api", "a", "--reason", "debugging a leak"], env);
    expect(drain.stdout).toMatch(/^api\/a is drained since \d{4}-\d\d-\d\dT[\d:.]+Z: Discover, DNS and health checks leave it out until 'muster undrain api a'\n$/);
    const ls = await MusterProcess.run(["ls", "api"], env);
    expect(ls.stdout.split("\n").slice(1, -1).map((line) => line.split(/\s+/)[1])).toEqual(["b"]);
    const all = await MusterProcess.run(["ls", "api", "--all", "-o", "wide"], env);
    expect(all.stdout).toMatch(/^api +a +10\.0\.0\.1:80 +- +HEALTHY \(drained\) .* debugging a leak$/m);
    const services = await MusterProcess.run(["services"], env);
    expect(services.stdout).toMatch(/^SERVICE +INSTANCES +HEALTHY +DEGRADED +UNHEALTHY +DRAINED\napi +2 +2 +0 +0 +1\n$/);
    const status = await MusterProcess.run(["status"], env);
    expect(status.stdout).toMatch(/^instances +2 \(2 healthy, 0 degraded, 0 unhealthy; 1 drained\)$/m);
    const refused = await MusterProcess.run(["drain", "api", "a", "--reason", "two\nlines"], env);
    expect([refused.code, refused.stderr]).toEqual([1, 'muster: reason: must not contain control characters such as newlines (got "two\\nlines")\n']);

    const undrain = await MusterProcess.run(["undrain", "api", "a"], env);
    expect(undrain.stdout).toBe("api/a is in discovery (revision 4)\n");
    expect((await client.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["a", "b"]);
  });
});
