import * as grpc from "@grpc/grpc-js";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it, onTestFinished } from "vitest";
import { RegistryAgent } from "../src/client/agent.js";
import { registerMusterResolver } from "../src/client/grpc-js-resolver.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { EventType, HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { TestRegistry } from "./support/test-registry.js";
import { tlsPem } from "./support/tls-fixtures.js";
import { WatchReader } from "./support/watch-reader.js";
import { answeredBy, echoBackend as backend, EchoClient, who } from "./support/echo-backend.js";

async function calls(client: grpc.Client, count: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const name = await who(client);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** Calls until every named backend has answered, so round robin has all of them READY. */
async function warmUp(client: grpc.Client, names: readonly string[]): Promise<void> {
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < names.length; i++) seen.add(await who(client));
  expect([...seen].sort()).toEqual([...names].sort());
}

describe("the muster: resolver for @grpc/grpc-js", () => {
  registerMusterResolver();

  it("spreads calls over healthy instances and moves traffic off one within about a ttl of it going UNHEALTHY", async () => {
    const server = await TestRegistry.start();
    const registry = createRegistryClient({ baseUrl: server.url });
    const [a, b] = [await backend("a"), await backend("b")];
    const ttl = durationFromMs(1_000);
    const agent = new RegistryAgent(registry, { service: "echo", id: "a", address: a, ttl });
    onTestFinished(() => agent.close());
    await agent.until("registered");
    await registry.register({ instance: { service: "echo", id: "b", address: b, ttl } });
    const watch = new WatchReader(registry.watch({ service: "echo", includeUnhealthy: true, sinceRevision: 1n }));

    const client = new EchoClient(`muster://${new URL(server.url).host}/echo`, grpc.credentials.createInsecure());
    onTestFinished(() => client.close());
    await warmUp(client, ["a", "b"]);
    expect(await calls(client, 20)).toEqual({ a: 10, b: 10 });

    let wentUnhealthy: number | undefined;
    while (wentUnhealthy === undefined) {
      const events = (await watch.nextWithEvents(5_000)).events;
      if (events.some((event) => event.type === EventType.HEALTH_CHANGED && event.instance?.id === "b")) wentUnhealthy = Date.now();
    }
    let movedOff: number | undefined;
    while (movedOff === undefined) {
      const counts = await calls(client, 10);
      if (counts.b === undefined) movedOff = Date.now();
      else await new Promise((resolve) => setTimeout(resolve, 20));
      expect(Date.now() - wentUnhealthy).toBeLessThan(1_000);
    }
    expect(await calls(client, 20)).toEqual({ a: 20 });
  });

  it("honours weights, and reports UNAVAILABLE while no instance is healthy", async () => {
    const server = await TestRegistry.start();
    const registry = createRegistryClient({ baseUrl: server.url });
    const [a, b] = [await backend("a"), await backend("b")];
    await registry.register({ instance: { service: "weighted", id: "a", address: a, weight: 30, ttl: durationFromMs(60_000) } });
    await registry.register({ instance: { service: "weighted", id: "b", address: b, weight: 10, ttl: durationFromMs(60_000) } });
    const client = new EchoClient(`muster://${new URL(server.url).host}/weighted`, grpc.credentials.createInsecure());
    onTestFinished(() => client.close());
    await warmUp(client, ["a", "b"]);
    expect(await calls(client, 40)).toEqual({ a: 30, b: 10 });

    const empty = new EchoClient(`muster://${new URL(server.url).host}/nobody`, grpc.credentials.createInsecure());
    onTestFinished(() => empty.close());
    const error = await who(empty).catch((e: unknown) => e as grpc.ServiceError);
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect((error as grpc.ServiceError).details).toContain("no healthy instances of nobody");
  });

  it("keeps calls in the caller's zone while it has instances taking traffic, and fails over to every zone when it has none", async () => {
    const server = await TestRegistry.start();
    const registry = createRegistryClient({ baseUrl: server.url });
    const ttl = durationFromMs(60_000);
    for (const [id, zone] of [["a", "eu-1a"], ["b", "eu-1a"], ["c", "eu-1b"]] as const) {
      await registry.register({ instance: { service: "zoned", id, zone, address: await backend(id), ttl } });
    }
    const host = new URL(server.url).host;
    const local = new EchoClient(`muster://${host}/zoned?zone=eu-1a`, grpc.credentials.createInsecure());
    onTestFinished(() => local.close());
    await warmUp(local, ["a", "b"]);
    expect(await calls(local, 20)).toEqual({ a: 10, b: 10 });

    await registry.drain({ service: "zoned", id: "a" });
    expect(await answeredBy(local, ["b"])).toEqual(["b"]);
    await registry.heartbeat({ service: "zoned", id: "b", status: HealthStatus.UNHEALTHY });
    expect(await answeredBy(local, ["c"])).toEqual(["c"]);
    await registry.undrain({ service: "zoned", id: "a" });
    expect(await answeredBy(local, ["a"])).toEqual(["a"]);

    // The option sets the zone of every target that names none.
    registerMusterResolver({ zone: "eu-1b" });
    onTestFinished(() => registerMusterResolver());
    const other = new EchoClient(`muster://${host}/zoned`, grpc.credentials.createInsecure());
    onTestFinished(() => other.close());
    expect(await calls(other, 10)).toEqual({ c: 10 });
  });

  it("reaches a registry that serves TLS and requires a token, with the client options it is given", { timeout: 15_000 }, async () => {
    const { ca, cert, key } = tlsPem;
    const tls = { cert, key };
    const server = await TestRegistry.start({ tls, accessTokens: parseAccessTokens("read r-8a1b77c0e9d24f15\nwrite w-3f9c2a7d41b8e6f0") });
    await createRegistryClient({ baseUrl: server.url, ca, token: "w-3f9c2a7d41b8e6f0" }).register({ instance: { service: "echo", id: "a", address: await backend("a") } });
    registerMusterResolver({ registry: server.url, client: { ca, token: "r-8a1b77c0e9d24f15" } });
    onTestFinished(() => registerMusterResolver());
    for (const target of ["muster:///echo", `muster://${new URL(server.url).host}/echo`]) {
      const client = new EchoClient(target, grpc.credentials.createInsecure());
      onTestFinished(() => client.close());
      expect(await who(client)).toBe("a");
    }
  });
});
