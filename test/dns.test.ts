import dgram from "node:dgram";
import { Resolver } from "node:dns/promises";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// The registry answers DNS too, so programs that can only resolve names find instances without any stub.

const instance = (service: string, id: string, address: string, tags: string[] = []) => ({ service, id, address, tags, ttl: durationFromMs(600_000) });

/** Node's resolver (c-ares, a real DNS client: UDP first, TCP when an answer comes back truncated) pointed at the registry. */
function resolverFor(port: number): Resolver {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return resolver;
}

async function dnsError(lookup: Promise<unknown>): Promise<string> {
  try {
    await lookup;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
  throw new Error("the lookup succeeded");
}

describe("DNS", () => {
  it("answers A, AAAA and SRV with the instances that take traffic, by service and tag", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0 } });
    const client = server.client();
    await client.register({ instance: instance("web", "v4", "10.0.0.1:8080", ["canary"]) });
    await client.register({ instance: instance("web", "v6", "[2001:db8::7]:8081") });
    await client.register({ instance: instance("web", "named", "web-3.internal:8082") });
    await client.register({ instance: instance("web", "sick", "10.0.0.9:8080") });
    await client.heartbeat({ service: "web", id: "sick", status: HealthStatus.UNHEALTHY });
    const resolver = resolverFor(server.dnsPort ?? 0);

    expect(await resolver.resolve4("web.service.muster")).toEqual(["10.0.0.1"]);
    expect(await resolver.resolve6("WEB.service.muster")).toEqual(["2001:db8::7"]);
    const services = await resolver.resolveSrv("web.service.muster");
    expect(services.map(({ name, port }) => `${name}:${port}`).sort()).toEqual(["0a000001.addr.muster:8080", "20010db8000000000000000000000007.addr.muster:8081", "web-3.internal:8082"]);
    expect(await resolver.resolve4("0a000001.addr.muster")).toEqual(["10.0.0.1"]);
    expect(await resolver.resolve6("20010db8000000000000000000000007.addr.muster")).toEqual(["2001:db8::7"]);
    expect(await resolver.resolve4("canary.web.service.muster")).toEqual(["10.0.0.1"]);

    // A health change shows at once: the answers' TTL is 0.
    await client.heartbeat({ service: "web", id: "sick", status: HealthStatus.HEALTHY });
    expect((await resolver.resolve4("web.service.muster", { ttl: true })).map(({ address, ttl }) => `${address}/${ttl}`).sort()).toEqual(["10.0.0.1/0", "10.0.0.9/0"]);
  });

  it("says NXDOMAIN for what the registry does not know, no records for a service with nothing serving, and refuses other zones", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0 } });
    await server.client().register({ instance: instance("api", "a", "10.0.0.2:80") });
    await server.client().heartbeat({ service: "api", id: "a", status: HealthStatus.UNHEALTHY });
    const resolver = resolverFor(server.dnsPort ?? 0);
    expect(await dnsError(resolver.resolve4("nothing.service.muster"))).toBe("ENOTFOUND");
    expect(await dnsError(resolver.resolve4("canary.api.service.muster"))).toBe("ENOTFOUND");
    expect(await dnsError(resolver.resolve4("what.muster"))).toBe("ENOTFOUND");
    expect(await dnsError(resolver.resolve4("api.service.muster"))).toBe("ENODATA");
    expect(await dnsError(resolver.resolveTxt("api.service.muster"))).toBe("ENODATA");
    expect(await dnsError(resolver.resolve4("example.com"))).toBe("EREFUSED");
  });

  it("sends an answer too large for UDP truncated, and the whole of it over TCP", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0 } });
    const client = server.client();
    await Promise.all(Array.from({ length: 120 }, (_, n) => client.register({ instance: instance("fleet", `i${n}`, `10.1.${n >> 8}.${n & 255}:9000`) })));
    const addresses = await resolverFor(server.dnsPort ?? 0).resolve4("fleet.service.muster");
    expect(addresses.length).toBe(120);
    expect(new Set(addresses).size).toBe(120);
  });

  it("answers FORMERR to a message it cannot read, drops what has no header, and keeps answering", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0 } });
    const socket = dgram.createSocket("udp4");
    const replies: Buffer[] = [];
    socket.on("message", (message) => replies.push(message));
    const send = (bytes: Buffer) => new Promise<void>((resolve) => socket.send(bytes, server.dnsPort ?? 0, "127.0.0.1", () => resolve()));
    await send(Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xff]));
    await send(Buffer.from([0xde, 0xad]));
    await expect.poll(() => replies.length).toBe(1);
    const [reply] = replies;
    expect([reply?.readUInt16BE(0), (reply?.readUInt16BE(2) ?? 0) & 0x800f]).toEqual([0x1234, 0x8001]);
    socket.close();
    await server.client().register({ instance: instance("api", "a", "10.0.0.2:80") });
    expect(await resolverFor(server.dnsPort ?? 0).resolve4("api.service.muster")).toEqual(["10.0.0.2"]);
  });
});

describe("DNS under random input", () => {
  it("answers every message whose header it can read with a well-formed reply of the same id, and never stops", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0 } });
    await server.client().register({ instance: instance("api", "a", "10.0.0.2:80", ["blue"]) });
    const { decode, encode } = await import("dns-packet");
    const socket = dgram.createSocket("udp4");
    const ask = (bytes: Uint8Array) =>
      new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => done(undefined), 300);
        const done = (reply: Buffer | undefined) => {
          clearTimeout(timer);
          socket.off("message", done);
          resolve(reply);
        };
        socket.on("message", done);
        socket.send(bytes, server.dnsPort ?? 0, "127.0.0.1");
      });
    const label = fc.oneof(fc.constantFrom("api", "blue", "service", "addr", "muster", "0a000002", "*", ""), fc.string({ maxLength: 70 }));
    const query = fc.record({ id: fc.nat({ max: 0xffff }), flags: fc.nat({ max: 0xffff }), name: fc.array(label, { maxLength: 6 }).map((labels) => labels.join(".")), type: fc.constantFrom("A", "AAAA", "SRV", "TXT", "SOA", "ANY", "MX") });
    const message = fc.oneof(
      // Shorter messages, which have no header to answer, are dropped (the FORMERR test above).
      fc.uint8Array({ minLength: 12, maxLength: 600 }),
      query.map((one) => {
        try {
          return encode({ id: one.id, type: "query", flags: one.flags & 0x7fff, questions: [{ type: one.type as "A", name: one.name, class: "IN" }] });
        } catch {
          return Buffer.alloc(12);
        }
      }),
      query.chain((one) => fc.tuple(fc.nat({ max: 40 }), fc.nat({ max: 255 })).map(([at, byte]) => {
        const bytes = Buffer.from(encode({ id: one.id, type: "query", questions: [{ type: "A", name: "api.service.muster", class: "IN" }] }));
        bytes[at % bytes.length] = byte;
        return bytes;
      })),
    );
    await fc.assert(
      fc.asyncProperty(message, async (bytes) => {
        const reply = await ask(bytes);
        expect(reply, "a message with a header gets a reply").toBeDefined();
        const decoded = decode(reply as Buffer);
        // SERVFAIL would mean an error the answers did not expect.
        return decoded.id === Buffer.from(bytes).readUInt16BE(0) && decoded.type === "response" && ((decoded.flags ?? 0) & 0xf) !== 2;
      }),
      { numRuns: 300 },
    );
    socket.close();
    expect(await resolverFor(server.dnsPort ?? 0).resolve4("blue.api.service.muster")).toEqual(["10.0.0.2"]);
  });
});

describe("a DNS domain of the operator's choosing", () => {
  it("answers for it, with its SOA and its SRV targets, and refuses muster", async () => {
    const server = await TestRegistry.start({ dns: { host: "127.0.0.1", port: 0, domain: "Svc.Example.Internal." } });
    await server.client().register({ instance: instance("web", "a", "10.0.0.1:8080") });
    const resolver = resolverFor(server.dnsPort ?? 0);
    expect(await resolver.resolve4("web.service.svc.example.internal")).toEqual(["10.0.0.1"]);
    expect((await resolver.resolveSrv("web.service.svc.example.internal")).map(({ name, port }) => `${name}:${port}`)).toEqual(["0a000001.addr.svc.example.internal:8080"]);
    expect(await resolver.resolve4("0a000001.addr.svc.example.internal")).toEqual(["10.0.0.1"]);
    expect((await resolver.resolveSoa("svc.example.internal")).nsname).toBe("ns.svc.example.internal");
    expect(await dnsError(resolver.resolve4("web.service.muster"))).toBe("EREFUSED");
    expect(await dnsError(resolver.resolve4("web.service.example.internal"))).toBe("EREFUSED");
    expect(await dnsError(resolver.resolve4("nothing.service.svc.example.internal"))).toBe("ENOTFOUND");
  });
});

describe("muster serve --dns-addr", () => {
  it("answers on the address it is given, and explains an address in use in one line", async () => {
    const folder = await tempDataDir();
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data") }, ["--dns-addr", "127.0.0.1:0"]);
    const ready = await serving.line((line) => line.includes("muster is serving"));
    const url = (JSON.parse(ready) as { url: string }).url;
    const dnsPort = Number((JSON.parse(ready) as { dns: string }).dns.split(":").at(-1));
    await createRegistryClient({ baseUrl: url }).register({ instance: instance("api", "a", "10.0.0.3:80") });
    expect(await resolverFor(dnsPort).resolve4("api.service.muster")).toEqual(["10.0.0.3"]);

    const clash = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(folder, "other"), "--dns-addr", `127.0.0.1:${dnsPort}`]);
    expect([clash.code, clash.stderr.trim()]).toEqual([1, `muster: cannot answer DNS on 127.0.0.1:${dnsPort}: the address is already in use; stop the other process or set MUSTER_DNS_ADDR to a free host:port`]);
    expect((await serving.kill("SIGTERM")).code).toBe(0);
  });

  it("takes --dns-domain, and refuses one that is not a domain in one line", async () => {
    const folder = await tempDataDir();
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data"), MUSTER_DNS_DOMAIN: "ignored.example" }, ["--dns-addr", "127.0.0.1:0", "--dns-domain", "svc.internal"]);
    const ready = await serving.line((line) => line.includes("muster is serving"));
    const url = (JSON.parse(ready) as { url: string }).url;
    const dnsPort = Number((JSON.parse(ready) as { dns: string }).dns.split(":").at(-1));
    await createRegistryClient({ baseUrl: url }).register({ instance: instance("api", "a", "10.0.0.3:80") });
    expect(await resolverFor(dnsPort).resolve4("api.service.svc.internal")).toEqual(["10.0.0.3"]);
    expect((await serving.kill("SIGTERM")).code).toBe(0);

    const refused = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(folder, "other"), "--dns-addr", "127.0.0.1:0"], { MUSTER_DNS_DOMAIN: "svc..internal" });
    expect([refused.code, refused.stderr]).toEqual([1, 'muster: DNS domain (--dns-domain, MUSTER_DNS_DOMAIN, "dnsDomain") must be a DNS domain such as muster or svc.example.internal: dot-separated labels of letters, digits and \'-\' (got "svc..internal")\n']);
  });
});
