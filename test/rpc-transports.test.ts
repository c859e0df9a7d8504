import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventType, HealthStatus, RegistryService } from "../gen/muster/v1/registry_pb.js";
import { registryServiceImpl } from "../src/server/registry-service.js";
import { transports } from "./support/clients.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";

const exec = promisify(execFile);

describe.each(Object.keys(transports))("every RPC over %s", (transport) => {
  it("registers, heartbeats, discovers, watches and deregisters", async () => {
    const server = await TestRegistry.start();
    const client = server.client(transport);
    const abort = new AbortController();
    const watch = new WatchReader(client.watch({ service: "payments" }, { signal: abort.signal }));
    const initial = await watch.next();
    expect(initial.snapshot).toBe(true);
    expect(initial.events).toEqual([]);

    const registered = await client.register({
      instance: { service: "payments", id: "p-1", address: "10.0.0.1:8080", version: "1.4.2", tags: ["grpc"], labels: { env: "prod" }, ttl: durationFromMs(5000) },
    });
    expect(registered.revision).toBe(1n);
    expect(registered.instance?.health).toBe(HealthStatus.HEALTHY);
    expect(registered.instance?.weight).toBe(1);

    const added = await watch.nextWithEvents();
    expect(added.events.map((e) => [e.type, e.instance?.id, e.revision])).toEqual([[EventType.REGISTERED, "p-1", 1n]]);

    const beat = await client.heartbeat({ service: "payments", id: "p-1", status: HealthStatus.DEGRADED });
    expect(beat.health).toBe(HealthStatus.DEGRADED);
    expect(beat.ttl?.seconds).toBe(5n);
    const degraded = await watch.nextWithEvents();
    expect(degraded.events[0]?.type).toBe(EventType.HEALTH_CHANGED);
    expect(degraded.events[0]?.previousHealth).toBe(HealthStatus.HEALTHY);

    const found = await client.discover({ service: "payments", selector: "env=prod", version: ">=1.4 <2", tags: ["grpc"] });
    expect(found.instances.map((i) => i.id)).toEqual(["p-1"]);
    expect(found.revision).toBe(2n);

    const left = await client.deregister({ service: "payments", id: "p-1" });
    expect(left.revision).toBe(3n);
    const removed = await watch.nextWithEvents();
    expect(removed.events[0]).toMatchObject({ type: EventType.DEREGISTERED, removed: true, revision: 3n });
    expect((await client.discover({ service: "payments" })).instances).toEqual([]);
    abort.abort();
    // The cancelled Watch leaves no watcher behind on the server.
    await expect.poll(() => server.registry.stats().watchers).toBe(0);
  });

  it("answers INVALID_ARGUMENT and NOT_FOUND with the proper codes", async () => {
    const client = (await TestRegistry.start()).client(transport);
    const invalid = await client.register({ instance: { service: "Bad_Name", address: "x:1" } }).catch((e: unknown) => e);
    expect(ConnectError.from(invalid).code).toBe(Code.InvalidArgument);
    expect(ConnectError.from(invalid).rawMessage).toContain("instance.service");
    const missing = await client.heartbeat({ service: "payments", id: "nobody" }).catch((e: unknown) => e);
    expect(ConnectError.from(missing).code).toBe(Code.NotFound);
  });
});

describe("a @grpc/grpc-js client built from the .proto file", () => {
  it("calls every RPC", async () => {
    const server = await TestRegistry.start();
    const client = grpcJsClient(server.url);
    try {
      const events: Record<string, unknown>[] = [];
      const stream = client.watch({ service: "search", include_unhealthy: true });
      stream.on("data", (message: { events: Record<string, unknown>[] }) => events.push(...message.events));
      stream.on("error", () => undefined);

      const registered = await client.unary("Register", {
        instance: { service: "search", id: "s-1", address: "[::1]:9000", labels: { tier: "gold" }, ttl: { seconds: 30 } },
      });
      expect(registered.revision).toBe("1");
      const beat = await client.unary("Heartbeat", { service: "search", id: "s-1", status: "HEALTH_STATUS_UNHEALTHY" });
      expect(beat.health).toBe("HEALTH_STATUS_UNHEALTHY");
      const found = await client.unary("Discover", { selector: "tier in (gold,silver)", include_unhealthy: true });
      expect((found.instances as { id: string }[]).map((i) => i.id)).toEqual(["s-1"]);
      const healthyOnly = await client.unary("Discover", { service: "search" });
      expect(healthyOnly.instances).toEqual([]);
      const left = await client.unary("Deregister", { service: "search", id: "s-1" });
      expect(left.revision).toBe("3");

      await expect.poll(() => events.map((e) => e.type)).toEqual([
        "EVENT_TYPE_REGISTERED",
        "EVENT_TYPE_HEALTH_CHANGED",
        "EVENT_TYPE_DEREGISTERED",
      ]);
      stream.cancel();
      const error = await client.unary("Register", { instance: { service: "search", address: "no-port" } }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 3 });
    } finally {
      client.close();
    }
  });
});

describe("buf curl", () => {
  it("calls Register and Discover over gRPC with the proto schema", async () => {
    const server = await TestRegistry.start();
    const curl = (method: string, body: object) =>
      exec("node_modules/.bin/buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--schema", "proto", "-d", JSON.stringify(body), `${server.url}/muster.v1.RegistryService/${method}`]);
    const registered = await curl("Register", { instance: { service: "agents", id: "a-1", address: "agent.local:7000", capabilities: ["tool:search"] } });
    expect(JSON.parse(registered.stdout)).toMatchObject({ revision: "1", instance: { id: "a-1", health: "HEALTH_STATUS_HEALTHY" } });
    const found = await curl("Discover", { capability: "tool:search" });
    expect(JSON.parse(found.stdout)).toMatchObject({ instances: [{ id: "a-1" }], revision: "1" });
  });
});

describe("an in-process caller", () => {
  it("uses the same service implementation with no network at all", async () => {
    const server = await TestRegistry.start();
    const transport = createRouterTransport((router) => router.service(RegistryService, registryServiceImpl(server.registry)));
    const inProcess = createClient(RegistryService, transport);
    await inProcess.register({ instance: { service: "local", id: "l-1", address: "127.0.0.1:9" } });
    const overTheNetwork = await server.client().discover({ service: "local" });
    expect(overTheNetwork.instances.map((i) => i.id)).toEqual(["l-1"]);
  });
});
