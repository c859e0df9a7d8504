import dgram from "node:dgram";
import { Resolver } from "node:dns/promises";
import { writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { callError } from "./support/call-error.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });
const registryMethod = (method: string, type = "unary") => `{grpc_type="${type}",grpc_service="muster.v1.RegistryService",grpc_method="${method}"`;

/** The samples of a text exposition, by name and labels as written: `grpc_server_started_total{...}` -> 3. */
function samples(exposition: string): Map<string, number> {
  const parsed = new Map<string, number>();
  for (const line of exposition.split("\n")) {
    const match = /^([a-z_:][\w:]*(?:\{.*\})?) (\S+)$/i.exec(line);
    if (match !== null) parsed.set(match[1] as string, Number(match[2]));
  }
  return parsed;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; body: string; authenticate: string | null }> {
  const response = await fetch(`${url}/metrics`, { headers });
  return { status: response.status, type: response.headers.get("content-type"), body: await response.text(), authenticate: response.headers.get("www-authenticate") };
}

/** GET /metrics over HTTP/2, as a scraper that speaks it would. */
function scrapeOverHttp2(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    const request = session.request({ ":path": "/metrics" });
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      session.close();
      resolve(body);
    });
    request.on("error", reject);
  });
}

describe("GET /metrics", () => {
  it("counts every call by method and status on every path, with the registry's own figures", async () => {
    const server = await TestRegistry.start({ metrics: true });
    const viaGrpc = server.client("gRPC over HTTP/2");
    const viaConnect = server.client("Connect JSON over HTTP/1.1");
    await viaGrpc.register({ instance: instance("a") });
    await viaConnect.register({ instance: instance("b") });
    expect((await callError(viaConnect.register({ instance: { ...instance("c"), service: "" } }))).code).toBe(Code.InvalidArgument);
    expect((await callError(viaGrpc.heartbeat({ service: "api", id: "nobody" }))).code).toBe(Code.NotFound);
    await server.client("gRPC-Web over HTTP/1.1").discover({ service: "api" });
    const grpcJs = grpcJsClient(server.url);
    await expect(grpcJs.unary("Deregister", { service: "api", id: "b" })).resolves.toBeDefined();
    grpcJs.close();
    // A watch the client leaves is CANCELLED, on the fast path and on Connect's.
    for (const client of [viaGrpc, viaConnect]) {
      const leave = new AbortController();
      const answers = client.watch({ service: "api" }, { signal: leave.signal })[Symbol.asyncIterator]();
      await answers.next();
      leave.abort();
    }
    await vi.waitFor(() => expect(server.registry.stats().watchers).toBe(0));

    const scraped = await scrape(server.url);
    expect([scraped.status, scraped.type]).toEqual([200, "text/plain; version=0.0.4; charset=utf-8"]);
    const values = samples(scraped.body);
    const expected: Record<string, number> = {
      [`grpc_server_started_total${registryMethod("Register")}}`]: 3,
      [`grpc_server_handled_total${registryMethod("Register")},grpc_code="OK"}`]: 2,
      [`grpc_server_handled_total${registryMethod("Register")},grpc_code="InvalidArgument"}`]: 1,
      [`grpc_server_handled_total${registryMethod("Heartbeat")},grpc_code="NotFound"}`]: 1,
      [`grpc_server_handled_total${registryMethod("Discover")},grpc_code="OK"}`]: 1,
      [`grpc_server_handled_total${registryMethod("Deregister")},grpc_code="OK"}`]: 1,
      [`grpc_server_started_total${registryMethod("Watch", "server_stream")}}`]: 2,
      [`grpc_server_handled_total${registryMethod("Watch", "server_stream")},grpc_code="Canceled"}`]: 2,
      [`grpc_server_started_total${registryMethod("ReleaseExpiryHold")}}`]: 0,
      'muster_instances{health="healthy"}': 1,
      "muster_services": 1,
      "muster_watchers": 0,
      "muster_revision": 3,
      'muster_events_total{type="registered"}': 2,
      'muster_events_total{type="deregistered"}': 1,
      'muster_events_total{type="expired"}': 0,
      'muster_events_total{type="drain-changed"}': 0,
      "muster_drained_instances": 0,
      "muster_store_committed_changes_total": 3,
      "muster_store_commit_seconds_count": 3,
      "muster_writes_failing": 0,
    };
    expect(Object.fromEntries(Object.keys(expected).map((name) => [name, values.get(name)]))).toEqual(expected);
    expect(values.get("muster_data_dir_bytes")).toBeGreaterThan(0);
    expect(values.get("process_resident_memory_bytes")).toBeGreaterThan(0);

    // The scrape itself is not an RPC, and HTTP/2 scrapers get the same.
    expect(samples(await scrapeOverHttp2(server.url)).get(`grpc_server_started_total${registryMethod("Register")}}`)).toBe(3);
  });

  it("counts DNS replies by response code and transport", async () => {
    const server = await TestRegistry.start({ metrics: true, dns: { host: "127.0.0.1", port: 0 } });
    await server.client().register({ instance: instance("a") });
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.dnsPort ?? 0}`]);
    expect(await resolver.resolve4("api.service.muster")).toEqual(["10.0.0.1"]);
    await expect(resolver.resolve4("nobody.service.muster")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(resolver.resolve4("example.com")).rejects.toMatchObject({ code: "EREFUSED" });
    // A message whose header can be read but not the rest: FORMERR.
    const socket = dgram.createSocket("udp4");
    const formErr = new Promise<Buffer>((resolve) => socket.once("message", resolve));
    socket.send(Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]), server.dnsPort ?? 0, "127.0.0.1");
    expect(((await formErr)[3] ?? 0) & 0xf).toBe(1);
    socket.close();

    const values = samples((await scrape(server.url)).body);
    expect(["NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "SERVFAIL"].map((rcode) => [rcode, values.get(`muster_dns_replies_total{rcode="${rcode}",transport="udp"}`)])).toEqual([
      ["NOERROR", 1],
      ["NXDOMAIN", 1],
      ["REFUSED", 1],
      ["FORMERR", 1],
      ["SERVFAIL", undefined],
    ]);
  });

  it("needs a token when the registry does, and only answers GET", async () => {
    const readToken = "r-metrics-reader-0001";
    const server = await TestRegistry.start({ metrics: true, accessTokens: parseAccessTokens(`read ${readToken}`) });
    const anonymous = await scrape(server.url);
    expect([anonymous.status, anonymous.authenticate, anonymous.body]).toEqual([401, "Bearer", expect.stringContaining("a token is required")]);
    expect(samples(anonymous.body).size).toBe(0);
    const unknown = await scrape(server.url, { authorization: "Bearer r-not-a-known-token-1" });
    expect(unknown.status).toBe(401);
    const reader = await scrape(server.url, { authorization: `Bearer ${readToken}` });
    expect([reader.status, samples(reader.body).get("muster_instances{health=\"healthy\"}")]).toEqual([200, 0]);
    const posted = await fetch(`${server.url}/metrics`, { method: "POST", headers: { authorization: `Bearer ${readToken}` } });
    expect([posted.status, posted.headers.get("allow")]).toEqual([405, "GET"]);
  });

  it("is not served unless asked for", async () => {
    const server = await TestRegistry.start();
    expect((await scrape(server.url)).status).toBe(404);
  });
});

describe("muster serve --metrics", () => {
  it("serves the metrics from the built binary, and refuses a setting that is neither on nor off", async () => {
    const folder = await tempDataDir();
    const config = join(folder, "muster.json");
    await writeFile(config, JSON.stringify({ metrics: true }));
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data") }, ["--config", config]);
    const url = await serving.ready();
    await createRegistryClient({ baseUrl: url }).register({ instance: instance("a") });
    const values = samples((await scrape(url)).body);
    expect([values.get(`grpc_server_handled_total${registryMethod("Register")},grpc_code="OK"}`), values.get('muster_instances{health="healthy"}')]).toEqual([1, 1]);
    expect((await serving.kill("SIGTERM")).code).toBe(0);

    const flagged = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data") }, ["--metrics"]);
    expect(samples((await scrape(await flagged.ready())).body).get('muster_instances{health="healthy"}')).toBe(1);
    expect((await flagged.kill("SIGTERM")).code).toBe(0);

    const exit = await MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "other"), MUSTER_METRICS: "maybe" }).exited;
    expect([exit.code, exit.stderr.trim()]).toEqual([1, 'muster: metrics (--metrics, MUSTER_METRICS, "metrics") must be on or off (got "maybe")']);
  });
});
