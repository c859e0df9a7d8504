import { create } from "@bufbuild/protobuf";
import { DurationSchema, durationFromMs, type Duration } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { moreTransports, transports, type FilterInit } from "./support/clients.js";
import { TestRegistry } from "./support/test-registry.js";

interface InstanceInit {
  service?: string;
  id?: string;
  address?: string;
  version?: string;
  tags?: string[];
  labels?: Record<string, string>;
  zone?: string;
  weight?: number;
  capabilities?: string[];
  ttl?: Duration;
  deregisterAfter?: Duration;
}

const valid: InstanceInit = {
  service: "payments",
  id: "p-1",
  address: "10.0.0.1:8080",
  version: "1.2.3",
  tags: ["grpc"],
  labels: { "app.kubernetes.io/name": "payments", env: "prod" },
  zone: "eu-west-1a",
  weight: 10,
  capabilities: ["tool:charge"],
  ttl: durationFromMs(5_000),
  deregisterAfter: durationFromMs(30_000),
};

const many = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i));

/** [field named in the error, the bad change to a valid instance] */
const badInstances: [string, InstanceInit][] = [
  ["instance.service", { service: "" }],
  ["instance.service", { service: "Payments" }],
  ["instance.service", { service: "pay_ments" }],
  ["instance.service", { service: "-payments" }],
  ["instance.service", { service: "a".repeat(64) }],
  ["instance.id", { id: "has space" }],
  ["instance.id", { id: "a/b" }],
  ["instance.id", { id: "x".repeat(129) }],
  ["instance.address", { address: "" }],
  ["instance.address", { address: "10.0.0.1" }],
  ["instance.address", { address: "10.0.0.1:0" }],
  ["instance.address", { address: "10.0.0.1:65536" }],
  ["instance.address", { address: "host:port" }],
  ["instance.address", { address: "::1:80" }],
  ["instance.address", { address: "[not-ipv6]:80" }],
  ["instance.address", { address: "300.1.1.1:80" }],
  ["instance.address", { address: "bad_host:80" }],
  ["instance.version", { version: "1.2" }],
  ["instance.version", { version: "v1.2.3" }],
  ["instance.version", { version: "latest" }],
  ["instance.tags[0]", { tags: [""] }],
  ["instance.tags[1]", { tags: ["ok", "not ok"] }],
  ["instance.tags", { tags: ["a", "a"] }],
  ["instance.tags", { tags: many(65, (i) => `t${i}`) }],
  ["instance.capabilities[0]", { capabilities: ["x".repeat(129)] }],
  ["instance.capabilities", { capabilities: many(65, (i) => `c${i}`) }],
  ["instance.labels", { labels: { "bad key": "v" } }],
  ["instance.labels", { labels: { "Bad_Prefix/name": "v" } }],
  ["instance.labels", { labels: { ["k".repeat(64)]: "v" } }],
  ['instance.labels["env"]', { labels: { env: "has space" } }],
  ['instance.labels["env"]', { labels: { env: "v".repeat(64) } }],
  ["instance.labels", { labels: Object.fromEntries(many(65, (i) => `k${i}`).map((k) => [k, "v"])) }],
  ["instance.zone", { zone: "eu west" }],
  ["instance.weight", { weight: 10_001 }],
  ["instance.ttl", { ttl: durationFromMs(999) }],
  ["instance.ttl", { ttl: durationFromMs(3_600_001) }],
  ["instance.ttl", { ttl: create(DurationSchema, { seconds: -5n }) }],
  ["instance.ttl", { ttl: create(DurationSchema, { seconds: 5n, nanos: -1 }) }],
  ["instance.deregister_after", { deregisterAfter: durationFromMs(500) }],
  ["instance.deregister_after", { deregisterAfter: durationFromMs(7_200_000) }],
];

const badFilters: [string, FilterInit][] = [
  ["service", { service: "Not-A-Label" }],
  ["tags[0]", { tags: ["bad tag"] }],
  ["selector", { selector: "env=" + "x".repeat(64) }],
  ["selector", { selector: "env in (a,b" }],
  ["selector", { selector: "env notin a" }],
  ["selector", { selector: "=prod" }],
  ["selector", { selector: "env=prod," }],
  ["selector", { selector: "bad key=1" }],
  ["selector", { selector: "x".repeat(4097) }],
  ["version", { version: ">=banana" }],
  ["capability", { capability: "has space" }],
];

async function expectInvalid(call: Promise<unknown>, field: string): Promise<void> {
  const error = ConnectError.from(await call.then(() => new Error("call succeeded"), (e: unknown) => e));
  expect(error.code, error.message).toBe(Code.InvalidArgument);
  expect(error.rawMessage.startsWith(`${field}: `), error.rawMessage).toBe(true);
}

describe("validation", () => {
  it("accepts the valid instance the cases below start from", async () => {
    const client = (await TestRegistry.start()).client();
    const { instance } = await client.register({ instance: valid });
    expect(instance).toMatchObject({ service: "payments", id: "p-1", weight: 10, zone: "eu-west-1a" });
    await client.register({ instance: { ...valid, id: "p-2", address: "[2001:db8::1]:443", version: "2.0.0-rc.1+build.5" } });
    await client.register({ instance: { ...valid, id: "p-3", address: "payments.svc.cluster.local:80", labels: {}, version: "" } });
    expect((await client.discover({ service: "payments" })).instances).toHaveLength(3);
  });

  it.each(badInstances)("Register rejects a bad %s and stores nothing", async (field, change) => {
    const server = await TestRegistry.start();
    const client = server.client("Connect binary over HTTP/2");
    await expectInvalid(client.register({ instance: { ...valid, ...change } }), field);
    const after = await client.discover({ includeUnhealthy: true });
    expect(after.instances).toEqual([]);
    expect(after.revision).toBe(0n);
  });

  it("Register rejects a missing instance", async () => {
    await expectInvalid((await TestRegistry.start()).client().register({}), "instance");
  });

  it("Heartbeat and Deregister reject bad names, and unknown enum values", async () => {
    const client = (await TestRegistry.start()).client();
    await client.register({ instance: valid });
    const notAHealthStatus: number = Object.keys(HealthStatus).length + 42;
    await expectInvalid(client.heartbeat({ service: "", id: "p-1" }), "service");
    await expectInvalid(client.heartbeat({ service: "payments", id: "" }), "id");
    // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- a peer with another schema can send any number
    await expectInvalid(client.heartbeat({ service: "payments", id: "p-1", status: notAHealthStatus }), "status");
    await expectInvalid(client.deregister({ service: "PAYMENTS", id: "p-1" }), "service");
    expect((await client.discover({})).revision).toBe(1n);
  });

  it("rejects JSON with a field or an enum name the schema does not have, instead of reading around it", async () => {
    const server = await TestRegistry.start();
    const post = async (method: string, body: object) => {
      const response = await fetch(`${server.url}/muster.v1.RegistryService/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as { code?: string; message?: string } };
    };
    // A typo read around would register with the default ttl, or report a failing instance HEALTHY.
    expect(await post("Register", { instance: { service: "web", id: "w-1", address: "10.0.0.1:80", ttll: "5s" } })).toEqual({
      status: 400,
      body: { code: "invalid_argument", message: expect.stringContaining('"ttll" is unknown') as string },
    });
    expect((await post("Register", { instance: { service: "web", id: "w-1", address: "10.0.0.1:80", ttl: "5s" } })).status).toBe(200);
    expect(await post("Heartbeat", { service: "web", id: "w-1", status: "HEALTH_STATUS_UNHEALTY" })).toEqual({
      status: 400,
      body: { code: "invalid_argument", message: expect.stringContaining('"HEALTH_STATUS_UNHEALTY"') as string },
    });
    const { instances, revision } = await server.client().discover({ service: "web" });
    expect(instances.map((instance) => [instance.id, instance.health, instance.ttl?.seconds])).toEqual([["w-1", HealthStatus.HEALTHY, 5n]]);
    expect(revision).toBe(1n);
  });

  it.each(badFilters)("Discover and Watch reject a bad %s", async (field, filter) => {
    const client = (await TestRegistry.start()).client();
    await expectInvalid(client.discover(filter), field);
    const watch = (async () => {
      for await (const message of client.watch(filter)) return message;
    })();
    await expectInvalid(watch, field);
  });

  it("answers NOT_FOUND for an unknown instance, and changes nothing", async () => {
    const client = (await TestRegistry.start()).client();
    for (const call of [client.heartbeat({ service: "payments", id: "ghost" }), client.deregister({ service: "payments", id: "ghost" })]) {
      const error = ConnectError.from(await call.catch((e: unknown) => e));
      expect(error.code).toBe(Code.NotFound);
      expect(error.rawMessage).toContain("payments/ghost");
    }
    expect((await client.discover({})).revision).toBe(0n);
  });

  it("rejects a request larger than the size limit on every protocol", async () => {
    const server = await TestRegistry.start({ readMaxBytes: 64 * 1024 });
    for (const transport of [...Object.keys(transports), ...Object.keys(moreTransports)]) {
      const error = await server.client(transport).register({ instance: { ...valid, tags: ["x".repeat(100_000)] } }).catch((e: unknown) => ConnectError.from(e));
      expect(error, transport).toBeInstanceOf(ConnectError);
      expect([Code.ResourceExhausted, Code.InvalidArgument], transport).toContain((error as ConnectError).code);
    }
    expect((await server.client().discover({})).revision).toBe(0n);
  });
});
