import { describe, expect, it } from "vitest";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

describe("the @grpc/grpc-js listener (--grpc-port)", () => {
  it("serves every registry RPC, Watch included, from the same implementation", async () => {
    const server = await TestRegistry.start({ grpcPort: 0 });
    const grpcUrl = server.grpcUrl;
    expect(grpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = grpcJsClient(grpcUrl ?? "");
    try {
      const events: string[] = [];
      const stream = client.watch({ service: "fast", include_unhealthy: true });
      stream.on("data", (message: { events: { type: string }[] }) => events.push(...message.events.map((event) => event.type)));
      stream.on("error", () => undefined);
      const registered = await client.unary("Register", { instance: { service: "fast", id: "f-1", address: "10.0.0.1:80", ttl: { seconds: 30 } } });
      expect(registered.revision).toBe("1");
      expect(await client.unary("Heartbeat", { service: "fast", id: "f-1", status: "HEALTH_STATUS_DEGRADED" })).toMatchObject({ health: "HEALTH_STATUS_DEGRADED" });
      expect(((await client.unary("Discover", { service: "fast" })).instances as { id: string }[]).map((i) => i.id)).toEqual(["f-1"]);
      expect(await client.unary("Deregister", { service: "fast", id: "f-1" })).toMatchObject({ revision: "3" });
      await expect.poll(() => events).toEqual(["EVENT_TYPE_REGISTERED", "EVENT_TYPE_HEALTH_CHANGED", "EVENT_TYPE_DEREGISTERED"]);
      stream.cancel();
      await expect(client.unary("Register", { instance: { service: "Bad", address: "x" } })).rejects.toMatchObject({ code: 3, details: expect.stringContaining("instance.service") as string });
      await expect(client.unary("Heartbeat", { service: "fast", id: "ghost" })).rejects.toMatchObject({ code: 5 });
      const mainPort = await server.client().discover({ includeUnhealthy: true });
      expect(mainPort.revision).toBe(3n);
    } finally {
      client.close();
    }
  });

  it("ends its Watch streams with UNAVAILABLE on shutdown", async () => {
    const server = await TestRegistry.start({ grpcPort: 0, registry: { progressIntervalMs: 3_600_000 } });
    const client = grpcJsClient(server.grpcUrl ?? "");
    const stream = client.watch({});
    const ended = new Promise<unknown>((resolve) => stream.on("error", resolve));
    stream.on("data", () => undefined);
    await new Promise((resolve) => stream.once("data", resolve));
    await server.stop();
    expect(await ended).toMatchObject({ code: 14 });
    client.close();
  });

  it("is started by muster serve --grpc-port", async () => {
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() }, ["--grpc-port", "0"]);
    const line = await server.line((text) => text.includes("muster is serving"));
    const { grpcUrl } = JSON.parse(line) as { grpcUrl: string };
    const client = grpcJsClient(grpcUrl);
    try {
      expect(await client.unary("Register", { instance: { service: "cli", address: "10.0.0.1:80", ttl: { seconds: 30 } } })).toMatchObject({ revision: "1" });
    } finally {
      client.close();
      await server.kill("SIGTERM");
    }
  });
});
