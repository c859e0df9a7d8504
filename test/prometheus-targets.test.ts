import http2 from "node:http2";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { TestRegistry } from "./support/test-registry.js";

// Prometheus' http_sd_configs read /prometheus/targets, so what registers here gets scraped, as with Consul's catalog.

const ttl = durationFromMs(600_000);

async function targets(url: string, query = "", headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; body: string }> {
  // Prometheus sends its refresh interval with every request.
  const response = await fetch(`${url}/prometheus/targets${query}`, { headers: { "X-Prometheus-Refresh-Interval-Seconds": "60", ...headers } });
  return { status: response.status, type: response.headers.get("content-type"), body: await response.text() };
}

describe("GET /prometheus/targets", () => {
  it("lists every instance, of any health and drained or not, as a target with __meta_muster_* labels", async () => {
    const server = await TestRegistry.start();
    expect(await targets(server.url)).toEqual({ status: 200, type: "application/json", body: "[]" });
    const client = server.client();
    await client.register({ instance: { service: "api", id: "a", address: "10.0.0.1:9100", version: "1.4.2", zone: "eu-1a", tags: ["canary", "grpc"], capabilities: ["tool:search"], labels: { env: "prod", "app.kubernetes.io/name": "api" }, ttl } });
    await client.register({ instance: { service: "api", id: "b", address: "[2001:db8::2]:9100", ttl } });
    await client.register({ instance: { service: "db", id: "d", address: "db-1.internal:9187", labels: { env: "dev" }, ttl } });
    await client.heartbeat({ service: "api", id: "b", status: HealthStatus.UNHEALTHY });
    await client.drain({ service: "db", id: "d" });

    const all = await targets(server.url);
    expect([all.status, all.type]).toEqual([200, "application/json"]);
    expect(JSON.parse(all.body)).toEqual([
      {
        targets: ["10.0.0.1:9100"],
        labels: {
          __meta_muster_service: "api", __meta_muster_id: "a", __meta_muster_address: "10.0.0.1:9100", __meta_muster_version: "1.4.2", __meta_muster_zone: "eu-1a",
          __meta_muster_health: "healthy", __meta_muster_drained: "false", __meta_muster_tags: ",canary,grpc,", __meta_muster_capabilities: ",tool:search,",
          __meta_muster_label_env: "prod", __meta_muster_label_app_kubernetes_io_name: "api",
        },
      },
      {
        targets: ["[2001:db8::2]:9100"],
        labels: {
          __meta_muster_service: "api", __meta_muster_id: "b", __meta_muster_address: "[2001:db8::2]:9100", __meta_muster_version: "", __meta_muster_zone: "",
          __meta_muster_health: "unhealthy", __meta_muster_drained: "false", __meta_muster_tags: ",,", __meta_muster_capabilities: ",,",
        },
      },
      {
        targets: ["db-1.internal:9187"],
        labels: {
          __meta_muster_service: "db", __meta_muster_id: "d", __meta_muster_address: "db-1.internal:9187", __meta_muster_version: "", __meta_muster_zone: "",
          __meta_muster_health: "healthy", __meta_muster_drained: "true", __meta_muster_tags: ",,", __meta_muster_capabilities: ",,", __meta_muster_label_env: "dev",
        },
      },
    ]);

    // Discover's filters, in the query.
    const ids = async (query: string) => (JSON.parse((await targets(server.url, query)).body) as { labels: { __meta_muster_id: string } }[]).map((group) => group.labels.__meta_muster_id);
    expect(await ids("?service=api")).toEqual(["a", "b"]);
    expect(await ids("?selector=env%3Dprod")).toEqual(["a"]);
    expect(await ids("?service=api&tag=canary&tag=grpc&version=%3E%3D1.0")).toEqual(["a"]);
    expect(await ids("?capability=tool:search")).toEqual(["a"]);
  });

  it("answers a bad filter with 400 and the rule, another method with 405, and over HTTP/2 too", async () => {
    const server = await TestRegistry.start();
    const badSelector = await targets(server.url, "?selector=env%3D%3D%3D");
    expect(badSelector.status).toBe(400);
    expect(badSelector.body).toMatch(/^selector: .+\n$/);
    const badService = await targets(server.url, "?service=Not_A_Name");
    expect(badService.status).toBe(400);
    expect(badService.body).toMatch(/^service: must be a DNS-1123 label/);
    const posted = await fetch(`${server.url}/prometheus/targets`, { method: "POST" });
    expect([posted.status, posted.headers.get("allow")]).toEqual([405, "GET"]);

    await server.client().register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", ttl } });
    const session = http2.connect(server.url);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const request = session.request({ ":path": "/prometheus/targets?service=api" });
        let text = "";
        request.setEncoding("utf8").on("data", (chunk: string) => (text += chunk)).on("end", () => resolve(text)).on("error", reject);
      });
      expect((JSON.parse(body) as { targets: string[] }[]).map((group) => group.targets)).toEqual([["10.0.0.1:80"]]);
    } finally {
      session.close();
    }
  });

  it("needs a token, read or write, when the registry requires tokens", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens("write w-3f9c2a7d41b8e6f0\nread r-8a1b77c0e9d24f15\n") });
    await createRegistryClient({ baseUrl: server.url, token: "w-3f9c2a7d41b8e6f0" }).register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", ttl } });
    const refused = await targets(server.url);
    expect([refused.status, refused.body]).toEqual([401, expect.stringMatching(/^a token is required: .+; Prometheus sends a token with authorization: \{ credentials_file: \.\.\. \}/)]);
    const read = await targets(server.url, "", { authorization: "Bearer r-8a1b77c0e9d24f15" });
    expect([read.status, (JSON.parse(read.body) as unknown[]).length]).toEqual([200, 1]);
  });
});
