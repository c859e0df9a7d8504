import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { FakeClock } from "./support/fake-clock.js";
import { TestRegistry } from "./support/test-registry.js";

const exec = promisify(execFile);
const buf = "node_modules/.bin/buf";

/** buf curl with no --schema: everything it knows comes from server reflection. */
async function curl(url: string, method: string, body: object): Promise<unknown> {
  const { stdout } = await exec(buf, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", "-d", JSON.stringify(body), `${url}/${method}`]);
  return JSON.parse(stdout);
}

/** The first message of a streaming call through buf curl, then the call is cut. */
function firstStreamed(url: string, method: string, body: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(buf, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", "-d", JSON.stringify(body), `${url}/${method}`]);
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const end = out.indexOf("\n}\n");
      if (end === -1) return;
      child.kill();
      resolve(JSON.parse(out.slice(0, end + 2)));
    });
    child.on("exit", (code) => reject(new Error(`buf curl exited ${code}: ${out}`)));
  });
}

describe("server reflection", () => {
  it.each([["grpc-v1"], ["grpc-v1alpha"]])("lets buf curl list every method (%s)", async (protocol) => {
    const server = await TestRegistry.start();
    const { stdout } = await exec(buf, ["curl", "--http2-prior-knowledge", "--reflect-protocol", protocol, "--list-methods", server.url]);
    expect(stdout.trim().split("\n")).toEqual([
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/List",
      "grpc.health.v1.Health/Watch",
      "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      "muster.v1.RegistryService/Deregister",
      "muster.v1.RegistryService/Discover",
      "muster.v1.RegistryService/Drain",
      "muster.v1.RegistryService/Heartbeat",
      "muster.v1.RegistryService/Register",
      "muster.v1.RegistryService/ReleaseExpiryHold",
      "muster.v1.RegistryService/Status",
      "muster.v1.RegistryService/Undrain",
      "muster.v1.RegistryService/Watch",
    ]);
  });

  it("lets buf curl call every RPC without --schema", async () => {
    const { url } = await TestRegistry.start();
    const method = (name: string) => `muster.v1.RegistryService/${name}`;
    expect(await curl(url, method("Register"), { instance: { service: "web", id: "w-1", address: "10.0.0.1:80", ttl: "30s" } })).toMatchObject({ revision: "1" });
    expect(await curl(url, method("Heartbeat"), { service: "web", id: "w-1", status: "HEALTH_STATUS_DEGRADED" })).toMatchObject({ health: "HEALTH_STATUS_DEGRADED", ttl: "30s" });
    expect(await curl(url, method("Discover"), { service: "web" })).toMatchObject({ instances: [{ id: "w-1", health: "HEALTH_STATUS_DEGRADED" }], revision: "2" });
    expect(await firstStreamed(url, method("Watch"), { service: "web" })).toMatchObject({ snapshot: true, revision: "2", events: [{ instance: { id: "w-1" } }] });
    expect(await curl(url, method("Status"), {})).toMatchObject({ instances: 1, degraded: 1, revision: "2" });
    expect(await curl(url, method("Drain"), { service: "web", id: "w-1", reason: "by hand" })).toMatchObject({ instance: { drain: { reason: "by hand" } }, revision: "3" });
    expect(await curl(url, method("Discover"), { service: "web" })).toEqual({ revision: "3" });
    expect(await curl(url, method("Undrain"), { service: "web", id: "w-1" })).toMatchObject({ instance: { id: "w-1" }, revision: "4" });
    expect(await curl(url, method("Deregister"), { service: "web", id: "w-1" })).toEqual({ revision: "5" });
    expect(await curl(url, "grpc.health.v1.Health/Check", { service: "" })).toEqual({ status: "SERVING" });
  });
});

describe("grpc.health.v1.Health", () => {
  it("answers Check and List for the registry and for registered services", async () => {
    const server = await TestRegistry.start();
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    const client = server.client();
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "muster.v1.RegistryService" })).status).toBe(ServingStatus.SERVING);
    const unknown = await health.check({ service: "payments" }).catch((e: unknown) => ConnectError.from(e));
    expect(unknown).toMatchObject({ code: Code.NotFound });
    await client.register({ instance: { service: "payments", id: "p-1", address: "10.0.0.1:80" } });
    await client.register({ instance: { service: "payments", id: "p-2", address: "10.0.0.2:80" } });
    expect((await health.check({ service: "payments" })).status).toBe(ServingStatus.SERVING);
    await client.heartbeat({ service: "payments", id: "p-1", status: HealthStatus.UNHEALTHY });
    expect((await health.check({ service: "payments" })).status).toBe(ServingStatus.SERVING);
    await client.heartbeat({ service: "payments", id: "p-2", status: HealthStatus.DEGRADED });
    expect((await health.check({ service: "payments" })).status).toBe(ServingStatus.NOT_SERVING);
    const listed = await health.list({});
    expect(Object.fromEntries(Object.entries(listed.statuses).map(([name, response]) => [name, response.status]))).toEqual({
      "": ServingStatus.SERVING,
      "muster.v1.RegistryService": ServingStatus.SERVING,
      payments: ServingStatus.NOT_SERVING,
    });
  });

  it("streams a service's transitions live on Watch, from unknown to serving to not serving and back", async () => {
    const clock = new FakeClock();
    const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000 } });
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    const client = server.client();
    const seen: ServingStatus[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const response of health.watch({ service: "payments" }, { signal: abort.signal })) seen.push(response.status);
    })().catch(() => undefined);
    await expect.poll(() => seen).toEqual([ServingStatus.SERVICE_UNKNOWN]);
    await client.register({ instance: { service: "payments", id: "p-1", address: "10.0.0.1:80", ttl: durationFromMs(2_000), deregisterAfter: durationFromMs(2_000) } });
    await expect.poll(() => seen).toEqual([ServingStatus.SERVICE_UNKNOWN, ServingStatus.SERVING]);
    await clock.advance(2_100);
    await expect.poll(() => seen.at(-1)).toBe(ServingStatus.NOT_SERVING);
    await client.heartbeat({ service: "payments", id: "p-1" });
    await expect.poll(() => seen.at(-1)).toBe(ServingStatus.SERVING);
    await clock.advance(4_200);
    await expect.poll(() => seen).toEqual([
      ServingStatus.SERVICE_UNKNOWN,
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
      ServingStatus.SERVICE_UNKNOWN,
    ]);
    abort.abort();
    await watching;
  });

  it("tells a Watch on the registry itself that it stops serving when it shuts down", async () => {
    const server = await TestRegistry.start();
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    const seen: ServingStatus[] = [];
    const watching = (async () => {
      for await (const response of health.watch({ service: "" })) seen.push(response.status);
    })().catch(() => undefined);
    await expect.poll(() => seen).toEqual([ServingStatus.SERVING]);
    await server.stop();
    await watching;
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });
});
