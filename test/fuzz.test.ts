import http from "node:http";
import http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { durationToMs, instanceFromWire } from "../src/server/convert.js";
import { defaultLivenessPolicy, validateInstanceSpec } from "../src/domain/instance-spec.js";
import { HealthStatus, type Instance } from "../gen/muster/v1/registry_pb.js";
import { rawHttp2Post } from "./support/raw-http2.js";
import { TestRegistry } from "./support/test-registry.js";

/** Strings that probe the rules: empty, huge, unicode, control characters, near-valid names. */
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom("", "a", "payments", "p-1", "10.0.0.1:80", "[::1]:443", "1.2.3", "env=prod", "-", "a".repeat(64), "x".repeat(10_000), "\u0000", "é", "__proto__", "constructor"),
);
const duration = fc.option(fc.record({ seconds: fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), nanos: fc.integer({ min: -2e9, max: 2e9 }) }), { nil: undefined });
const instance = fc.record({
  service: text,
  id: text,
  address: text,
  version: text,
  tags: fc.array(text, { maxLength: 70 }),
  labels: fc.dictionary(text, text, { maxKeys: 70 }),
  zone: text,
  weight: fc.nat({ max: 2 ** 32 - 1 }),
  capabilities: fc.array(text, { maxLength: 70 }),
  ttl: duration,
  deregisterAfter: duration,
});

const allowed = new Set([Code.InvalidArgument, Code.NotFound]);

async function outcome(call: Promise<unknown>): Promise<"ok" | Code> {
  try {
    await call;
    return "ok";
  } catch (error) {
    const code = ConnectError.from(error).code;
    if (!allowed.has(code)) throw new Error(`unexpected ${Code[code]}: ${ConnectError.from(error).message}`);
    return code;
  }
}

/** What the registry stores must pass its own rules again. */
function stillValid(stored: Instance): void {
  validateInstanceSpec(instanceFromWire(stored), defaultLivenessPolicy);
  expect(durationToMs(stored.ttl)).toBeGreaterThanOrEqual(1000);
}

describe("fuzzed input", () => {
  it("Register answers OK or INVALID_ARGUMENT, stores only valid instances, and rejections change nothing", async () => {
    const server = await TestRegistry.start({ readMaxBytes: 4 * 1024 * 1024 });
    const client = server.client("Connect binary over HTTP/2");
    await fc.assert(
      fc.asyncProperty(instance, async (fields) => {
        const before = (await client.discover({ includeUnhealthy: true })).revision;
        const wire = { ...fields, ttl: fields.ttl && create(DurationSchema, fields.ttl), deregisterAfter: fields.deregisterAfter && create(DurationSchema, fields.deregisterAfter) };
        try {
          const { instance: stored } = await client.register({ instance: wire });
          if (stored === undefined) throw new Error("no instance in the answer");
          stillValid(stored);
        } catch (error) {
          const rejected = ConnectError.from(error);
          expect(rejected.code, rejected.message).toBe(Code.InvalidArgument);
          expect(rejected.rawMessage).toMatch(/^instance(\.[a-z_]+(\[.*\])?)?: /);
          expect((await client.discover({ includeUnhealthy: true })).revision).toBe(before);
        }
      }),
      { numRuns: 300 },
    );
    for (const stored of (await client.discover({ includeUnhealthy: true })).instances) stillValid(stored);
  });

  it("Heartbeat, Deregister, Discover and Watch answer only OK, INVALID_ARGUMENT or NOT_FOUND", async () => {
    const server = await TestRegistry.start();
    const client = server.client();
    await client.register({ instance: { service: "payments", id: "p-1", address: "10.0.0.1:80", labels: { env: "prod" }, version: "1.2.3" } });
    const selector = fc.oneof(text, fc.array(fc.constantFrom("env", "=", "==", "!=", "!", ",", " in ", " notin ", "(", ")", "prod", "a/b", " "), { maxLength: 12 }).map((parts) => parts.join("")));
    const filter = fc.record({ service: text, tags: fc.array(text, { maxLength: 3 }), selector, version: fc.oneof(text, fc.constantFrom(">=1.2 <2", "^1", "~1.2.3", "1.x", "*", "<=banana")), capability: text, includeUnhealthy: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(text, text, fc.integer({ min: -5, max: 10 }), filter, async (service, id, status, spec) => {
        // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- a peer with another schema can send any number
        await outcome(client.heartbeat({ service, id, status: status as HealthStatus }));
        await outcome(client.discover(spec));
        await outcome((async () => {
          for await (const message of client.watch(spec)) return message;
        })());
        if (service !== "payments") await outcome(client.deregister({ service, id }));
      }),
      { numRuns: 200 },
    );
    // A fuzzed heartbeat may rightly have reported p-1 DEGRADED or UNHEALTHY; it must never have removed it.
    expect((await client.discover({ service: "payments", includeUnhealthy: true })).instances.map((i) => i.id)).toEqual(["p-1"]);
  });

  it("answers raw garbage and truncated frames on every protocol and HTTP version with a protocol error, and keeps serving", async () => {
    const server = await TestRegistry.start();
    const path = "/muster.v1.RegistryService/Register";
    const contentTypes = ["application/proto", "application/json", "application/grpc", "application/grpc+proto", "application/grpc-web+proto", "application/connect+proto", "text/plain"];
    // Connect-ES answers an undecodable body INTERNAL (as grpc-go does); anything else internal would be our fault.
    const decodeError = /^(parse (binary|json)|protocol error|cannot decode|premature EOF|invalid|unexpected)/i;
    const overHttp1 = (contentType: string, body: Uint8Array) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const request = http.request(`${server.url}${path}`, { method: "POST", headers: { "content-type": contentType } }, (response) => {
          let text = "";
          response.setEncoding("latin1").on("data", (chunk: string) => (text += chunk));
          response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
        });
        request.on("error", reject);
        request.end(body);
      });
    const session = http2.connect(server.url);
    const overHttp2 = async (contentType: string, body: Uint8Array) => {
      const answer = await rawHttp2Post(session, path, contentType, body);
      return { ...answer, message: answer.grpcMessage || answer.body.toString("latin1") };
    };
    const internalMessage = (text: string) => (JSON.parse(text) as { message: string }).message;
    const truncatedFrame = Buffer.from([0, 0, 0, 1, 0, 10, 20]);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...contentTypes), fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(truncatedFrame)), async (contentType, body) => {
        const h1 = await overHttp1(contentType, body);
        if (h1.status === 500) expect(internalMessage(h1.text), `HTTP/1.1 ${contentType}`).toMatch(decodeError);
        else expect(h1.status === 200 || (h1.status >= 400 && h1.status < 500), `HTTP/1.1 ${contentType} answered ${h1.status}`).toBe(true);
        const h2 = await overHttp2(contentType, body);
        if (h2.status === "500") expect(internalMessage(h2.message), `HTTP/2 ${contentType}`).toMatch(decodeError);
        else if (h2.grpcStatus === "13") expect(h2.message, `HTTP/2 ${contentType}`).toMatch(decodeError);
        else expect(h2.status === "200" ? h2.grpcStatus !== "0" && !h2.message.includes("grpc-status:0") : h2.status.startsWith("4"), `HTTP/2 ${contentType}: ${JSON.stringify(h2)}`).toBe(true);
      }),
      { numRuns: 150 },
    );
    session.close();
    expect((await server.client().register({ instance: { service: "alive", address: "10.0.0.1:80" } })).revision).toBe(1n);
  });
});
