import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
// The import a browser app uses: the generated schema alone, none of the SDK's Node modules.
import { RegistryService } from "muster/schema";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// A web dashboard is always served from another origin than the registry, so a browser asks first
// (a CORS preflight) and refuses to call, or to show the answer, unless the registry agrees.

const dashboard = "http://localhost:5173";

/** What a browser sends before a cross-origin call with these request headers. */
function preflight(url: string, origin: string, extra: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/muster.v1.RegistryService/Register`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,x-trace-id", ...extra },
  });
}

/**
 * A browser client library (connect-web, on fetch) as a page on `origin` runs it: the browser adds
 * the Origin header. Each answer's headers are kept, as the browser checks them.
 */
function browserClient(url: string, origin: string, protocol: "connect" | "grpc-web") {
  const answers: Headers[] = [];
  const fetchFromPage: typeof fetch = async (input, init) => {
    const response = await fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), origin } });
    answers.push(response.headers);
    return response;
  };
  const make = protocol === "connect" ? createConnectTransport : createGrpcWebTransport;
  return { client: createClient(RegistryService, make({ baseUrl: url, fetch: fetchFromPage })), answers };
}

const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });

describe("calls from web pages", () => {
  it("answers an allowed origin's preflight and lets its page read the answers, over Connect and gRPC-Web", async () => {
    const server = await TestRegistry.start({ cors: { allowedOrigins: ["HTTP://LocalHost:5173", "https://ops.example.com"] } });
    const answer = await preflight(server.url, dashboard, { "access-control-request-private-network": "true" });
    expect(answer.status).toBe(204);
    expect(answer.headers.get("access-control-allow-origin")).toBe(dashboard);
    expect(answer.headers.get("access-control-allow-methods")).toContain("POST");
    expect(answer.headers.get("access-control-allow-headers")).toBe("content-type,connect-protocol-version,x-trace-id");
    expect(answer.headers.get("access-control-allow-private-network")).toBe("true");
    expect(Number(answer.headers.get("access-control-max-age"))).toBeGreaterThan(0);
    expect(answer.headers.get("vary")).toBe("Origin");

    for (const protocol of ["connect", "grpc-web"] as const) {
      const { client, answers } = browserClient(server.url, dashboard, protocol);
      await client.register({ instance: instance(protocol) });
      for await (const snapshot of client.watch({ service: "api" })) {
        expect(snapshot.events.map((event) => event.instance?.id)).toContain(protocol);
        break;
      }
      expect(answers).toHaveLength(2);
      for (const headers of answers) {
        expect(headers.get("access-control-allow-origin")).toBe(dashboard);
        // gRPC-Web's status comes in these headers when an answer has no body; the page must be allowed to read them.
        expect(headers.get("access-control-expose-headers")).toContain("Grpc-Status");
      }
    }
  });

  it("refuses another origin's preflight with a sentence saying how to allow it, and marks no answer for it", async () => {
    const server = await TestRegistry.start({ cors: { allowedOrigins: [dashboard] } });
    const answer = await preflight(server.url, "https://evil.example");
    expect(answer.status).toBe(403);
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
    expect(await answer.text()).toBe('origin https://evil.example may not call this registry; start it with --cors-origin https://evil.example (MUSTER_CORS_ORIGINS), or "*" for any page\n');

    const { client, answers } = browserClient(server.url, "https://evil.example", "connect");
    await client.discover({ service: "api" });
    expect(answers[0]?.get("access-control-allow-origin")).toBeNull();
  });

  it("lets any page call with *, and none by default", async () => {
    const open = await TestRegistry.start({ cors: { allowedOrigins: ["*"] } });
    const answer = await preflight(open.url, "https://anywhere.example");
    expect(answer.status).toBe(204);
    expect(answer.headers.get("access-control-allow-origin")).toBe("*");
    expect(answer.headers.get("vary")).toBeNull();

    const closed = await TestRegistry.start();
    expect((await preflight(closed.url, dashboard)).status).toBe(403);
    // Clients that are not browsers send no Origin and are not affected.
    await closed.client("Connect JSON over HTTP/1.1").register({ instance: instance("plain") });
    expect((await closed.client().discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["plain"]);
  });

  it("lets every subdomain of a wildcard origin call, over its scheme and port only", async () => {
    const server = await TestRegistry.start({ cors: { allowedOrigins: ["https://*.Example.com", "http://*.dev.example.com:5173"] } });
    for (const origin of ["https://dash.example.com", "https://a.b.example.com", "http://ui.dev.example.com:5173"]) {
      const answer = await preflight(server.url, origin);
      expect([origin, answer.status, answer.headers.get("access-control-allow-origin")]).toEqual([origin, 204, origin]);
    }
    for (const origin of ["https://example.com", "http://dash.example.com", "https://dash.example.com:8443", "https://dash.example.com.evil.example", "https://evilexample.com", "http://ui.dev.example.com", "https://.example.com"]) {
      expect([origin, (await preflight(server.url, origin)).status]).toEqual([origin, 403]);
    }
    const page = browserClient(server.url, "https://dash.example.com", "connect");
    await page.client.register({ instance: instance("from-subdomain") });
    expect(page.answers[0]?.get("access-control-allow-origin")).toBe("https://dash.example.com");
    await expect(TestRegistry.start({ cors: { allowedOrigins: ["https://a.*.example.com"] } })).rejects.toThrow('CORS origin "https://a.*.example.com" must be');
    await expect(TestRegistry.start({ cors: { allowedOrigins: ["*.example.com"] } })).rejects.toThrow("must be");
  });

  it("refuses an origin that is not one, before it opens the data directory", async () => {
    await expect(TestRegistry.start({ cors: { allowedOrigins: ["localhost:5173"] } })).rejects.toThrow('CORS origin "localhost:5173" must be "*" or a scheme, host and optional port');
    await expect(TestRegistry.start({ cors: { allowedOrigins: ["https://dash.example.com/app"] } })).rejects.toThrow("must be");
  });

  it("takes the origins from --cors-origin, MUSTER_CORS_ORIGINS or the config file", async () => {
    const folder = await tempDataDir();
    const config = join(folder, "muster.json");
    await writeFile(config, JSON.stringify({ corsOrigins: ["https://from-file.example"] }));
    const sources: [string[], Record<string, string>, string][] = [
      [["--cors-origin", `${dashboard},https://ops.example.com`], {}, "https://ops.example.com"],
      [[], { MUSTER_CORS_ORIGINS: `${dashboard}, https://ops.example.com` }, "https://ops.example.com"],
      [["--config", config], {}, "https://from-file.example"],
    ];
    for (const [args, env, allowed] of sources) {
      const serving = MusterProcess.serve(env, ["--data-dir", join(folder, "data"), ...args]);
      const url = await serving.ready();
      expect((await preflight(url, allowed)).status).toBe(204);
      expect((await preflight(url, "https://other.example.com")).status).toBe(403);
      await serving.kill("SIGTERM");
    }

    const refused = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(folder, "data"), "--cors-origin", "http://localhost:5173/"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('muster: CORS origin "http://localhost:5173/" must be "*" or a scheme, host and optional port, such as https://dash.example.com, http://localhost:5173 or https://*.example.com (--cors-origin, MUSTER_CORS_ORIGINS)');
  });
});
