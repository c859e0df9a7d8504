import http2 from "node:http2";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DiscoverResponseSchema, HealthStatus, HeartbeatRequestSchema, InstanceSchema, RegisterRequestSchema } from "../gen/muster/v1/registry_pb.js";
import { grpcFrame, rawHttp2Post } from "./support/raw-http2.js";
import { TestRegistry } from "./support/test-registry.js";

const registerPath = "/muster.v1.RegistryService/Register";
const valid = { service: "payments", id: "p-1", address: "10.0.0.1:80" };

describe("the gRPC fast path (binary gRPC without compression, served from raw HTTP/2 streams)", () => {
  it("answers Register and Discover with the same instances as Connect's own encoding, through random changes", async () => {
    const server = await TestRegistry.start();
    const fast = server.client("gRPC over HTTP/2");
    const viaConnect = server.client("Connect binary over HTTP/2");
    const gzip = server.client("gRPC gzip over HTTP/2");
    const step = fc.record({
      id: fc.constantFrom("a", "b", "c", "d"),
      action: fc.constantFrom("register", "update", "degrade", "heartbeat", "deregister"),
      version: fc.constantFrom("1.0.0", "2.0.0"),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        for (const { id, action, version } of steps) {
          const instance = { service: "svc", id, address: `10.0.0.${action === "update" ? 2 : 1}:${id.charCodeAt(0)}`, version, labels: { id }, tags: [action], ttl: durationFromMs(60_000) };
          const registered = action === "register" || action === "update" ? await fast.register({ instance }) : undefined;
          if (registered !== undefined) {
            const seen = (await viaConnect.discover({ service: "svc" })).instances.find((found) => found.id === id);
            expect(registered.instance && toJson(InstanceSchema, registered.instance)).toEqual(seen && toJson(InstanceSchema, seen));
          } else if (action === "deregister") await fast.deregister({ service: "svc", id }).catch(() => undefined);
          else await fast.heartbeat({ service: "svc", id, status: action === "degrade" ? HealthStatus.DEGRADED : HealthStatus.HEALTHY }).catch(() => undefined);
          const [mine, connects, zipped] = await Promise.all([fast.discover({ service: "svc" }), viaConnect.discover({ service: "svc" }), gzip.discover({ service: "svc" })]);
          expect(toJson(DiscoverResponseSchema, mine)).toEqual(toJson(DiscoverResponseSchema, connects));
          expect(toJson(DiscoverResponseSchema, zipped)).toEqual(toJson(DiscoverResponseSchema, connects));
        }
      }),
      { numRuns: 15 },
    );
  });

  it("refuses broken gRPC framing with INVALID_ARGUMENT naming the rule, and stores nothing", async () => {
    const server = await TestRegistry.start();
    const session = http2.connect(server.url);
    const message = toBinary(RegisterRequestSchema, create(RegisterRequestSchema, { instance: valid }));
    const cases: [string, Buffer, RegExp][] = [
      ["no message", Buffer.alloc(0), /^request: the gRPC message is missing$/],
      ["compressed flag without grpc-encoding", grpcFrame(message, 1), /must not be compressed without grpc-encoding/],
      ["two messages", Buffer.concat([grpcFrame(message), grpcFrame(message)]), /exactly one message of the length its prefix declares/],
      ["a prefix longer than the body", grpcFrame(message).subarray(0, 10), /exactly one message of the length its prefix declares/],
      ["bytes that are not a RegisterRequest", grpcFrame(Buffer.from([0x0a, 0xff, 0xff])), /^request: must be one muster\.v1\.RegisterRequest in protobuf binary/],
    ];
    for (const [what, body, rule] of cases) {
      const answer = await rawHttp2Post(session, registerPath, "application/grpc", body);
      expect(answer.grpcStatus, what).toBe(String(Code.InvalidArgument));
      expect(answer.grpcMessage, what).toMatch(rule);
    }
    session.close();
    expect((await server.client().discover({})).revision).toBe(0n);
  });

  it("sends error messages percent-encoded, so they arrive exactly as Connect's JSON path words them", async () => {
    const server = await TestRegistry.start();
    const bad = { ...valid, service: "paiements-réseau 100%" };
    const overFastPath = await server.client("gRPC over HTTP/2").register({ instance: bad }).catch((error: unknown) => ConnectError.from(error));
    const overJson = await server.client("Connect JSON over HTTP/1.1").register({ instance: bad }).catch((error: unknown) => ConnectError.from(error));
    expect(overFastPath).toBeInstanceOf(ConnectError);
    expect((overFastPath as ConnectError).code).toBe(Code.InvalidArgument);
    expect((overFastPath as ConnectError).rawMessage).toBe((overJson as ConnectError).rawMessage);
    expect((overFastPath as ConnectError).rawMessage).toContain("réseau 100%");
  });

  it("ends a Watch with DEADLINE_EXCEEDED at its grpc-timeout, and frees the watcher", async () => {
    const server = await TestRegistry.start();
    const started = Date.now();
    const watching = (async () => {
      for await (const message of server.client().watch({}, { timeoutMs: 300 })) expect(message.snapshot).toBe(true);
    })();
    const error = ConnectError.from(await watching.then(() => new Error("the watch ended without an error"), (e: unknown) => e));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await expect.poll(() => server.registry.stats().watchers).toBe(0);
  });

  it("takes a deadline further off than a timer can hold as none, rather than ending the call at once", async () => {
    const server = await TestRegistry.start();
    await server.client().register({ instance: { ...valid, ttl: durationFromMs(60_000) } });
    const session = http2.connect(server.url);
    try {
      // grpc-timeout allows 99,999,999 hours; a Node timer set past about 24.8 days fires after 1 ms.
      const farOff = { "grpc-timeout": "99999999H" };
      const beat = await rawHttp2Post(session, "/muster.v1.RegistryService/Heartbeat", "application/grpc", grpcFrame(toBinary(HeartbeatRequestSchema, create(HeartbeatRequestSchema, { service: valid.service, id: valid.id }))), farOff);
      expect([beat.grpcStatus, beat.grpcMessage]).toEqual(["0", ""]);
      const watch = session.request({ ":method": "POST", ":path": "/muster.v1.RegistryService/Watch", "content-type": "application/grpc", te: "trailers", ...farOff });
      let ended: string | undefined;
      watch.on("trailers", (trailers: http2.IncomingHttpHeaders) => (ended = `${String(trailers["grpc-status"])} ${String(trailers["grpc-message"])}`));
      watch.on("data", () => undefined);
      watch.end(grpcFrame(new Uint8Array()));
      await expect.poll(() => server.registry.stats().watchers).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect([ended, server.registry.stats().watchers]).toEqual([undefined, 1]);
      watch.close();
    } finally {
      session.close();
    }
  });

  it("frees a watcher whose client cancels", async () => {
    const server = await TestRegistry.start();
    const abort = new AbortController();
    let messages = 0;
    const watching = (async () => {
      for await (const message of server.client().watch({}, { signal: abort.signal })) messages += message.snapshot ? 1 : 0;
    })().catch(() => undefined);
    await expect.poll(() => messages).toBe(1);
    expect(server.registry.stats().watchers).toBe(1);
    abort.abort();
    await watching;
    await expect.poll(() => server.registry.stats().watchers).toBe(0);
    expect((await server.client().register({ instance: valid })).revision).toBe(1n);
  });
});
