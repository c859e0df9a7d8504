import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it, onTestFinished } from "vitest";
import { callJson, CallError, streamJson, WatchView, type WatchResponseJson } from "../ui/view.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { summarize } from "./support/watch-view.js";

// The dashboard at /ui: its files, served safely, and its data layer run against the real registry (Node has fetch too).

const ttl = durationFromMs(600_000);

/** Follows a Watch through the dashboard's own code until `until` holds; resolves with what it saw. */
async function followUntil(url: string, view: WatchView, until: (view: WatchView) => boolean, headers: Record<string, string> = {}): Promise<void> {
  const stop = new AbortController();
  const following = streamJson(url, "Watch", view.request(), headers, stop.signal, (message: WatchResponseJson) => {
    view.apply(message);
    if (until(view)) stop.abort();
  });
  await following.catch((error: unknown) => {
    if (!stop.signal.aborted) throw error;
  });
}

/** The view as `summarize` writes instances, to compare with Discover. */
function summary(view: WatchView): string[] {
  return view.sorted().map((instance) => `${instance.service}/${instance.id} health=${HealthStatus[instance.health?.replace("HEALTH_STATUS_", "") as keyof typeof HealthStatus]} rev=${instance.revision ?? "0"}${instance.drain === undefined ? "" : ` drained=${JSON.stringify(instance.drain.reason ?? "")}`}`);
}

describe("the dashboard", () => {
  it("is served at /ui with a policy that keeps other origins' scripts and frames out, and / sends a browser there", async () => {
    const server = await TestRegistry.start();
    const page = await fetch(`${server.url}/ui`);
    expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/ui/page.js"></script>');
    for (const [path, type] of [["/ui/page.js", "text/javascript; charset=utf-8"], ["/ui/view.js", "text/javascript; charset=utf-8"], ["/ui/style.css", "text/css; charset=utf-8"]]) {
      const asset = await fetch(`${server.url}${path}`);
      expect([path, asset.status, asset.headers.get("content-type"), (await asset.text()).length > 100]).toEqual([path, 200, type, true]);
    }
    const root = await fetch(`${server.url}/`, { redirect: "manual" });
    expect([root.status, root.headers.get("location")]).toEqual([302, "/ui"]);
    expect((await fetch(`${server.url}/ui/secrets.json`)).status).toBe(404);
  });

  it("follows every change through a Watch split into parts, and resumes after a restart without losing one", async () => {
    const server = await TestRegistry.start({ registry: { watchLimits: { snapshotChunk: 2, maxBacklog: 10_000 } } });
    const client = server.client();
    for (let i = 0; i < 5; i++) await client.register({ instance: { service: i % 2 === 0 ? "api" : "db", id: `i${i}`, address: `10.0.0.${i + 1}:80`, ttl } });
    const view = new WatchView();
    await followUntil(server.url, view, (seen) => seen.instances.size === 5);
    expect(view.revision).toBe("5");
    const { history } = await callJson<{ history: string }>(server.url, "Status", {}, {});
    expect(view.history).toBe(history);

    await client.heartbeat({ service: "api", id: "i0", status: HealthStatus.UNHEALTHY });
    await callJson(server.url, "Drain", { service: "db", id: "i1", reason: "from the dashboard" }, {});
    await client.deregister({ service: "api", id: "i2" });
    await followUntil(server.url, view, (seen) => seen.revision === "8");
    const all = (await client.discover({ includeUnhealthy: true, includeDrained: true })).instances.map(summarize);
    expect(summary(view)).toEqual(all);

    await server.restart();
    const again = server.client();
    await again.register({ instance: { service: "api", id: "late", address: "10.0.0.9:80", ttl } });
    await callJson(server.url, "Undrain", { service: "db", id: "i1" }, {});
    await followUntil(server.url, view, (seen) => seen.revision === "10");
    expect(summary(view)).toEqual((await again.discover({ includeUnhealthy: true, includeDrained: true })).instances.map(summarize));
    const status = await callJson<{ instances: number; drained?: number; history: string }>(server.url, "Status", {}, {});
    expect([status.instances, status.drained, status.history, view.history]).toEqual([5, undefined, history, history]);
  });

  it("keeps each instance's last heartbeat current: heartbeats that change nothing reach it once a second", async () => {
    const server = await TestRegistry.start();
    const client = server.client();
    await client.register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", ttl } });
    const view = new WatchView();
    await followUntil(server.url, view, (seen) => seen.instances.size === 1);
    const registered = view.instances.get("api/a")?.lastHeartbeatAt;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.heartbeat({ service: "api", id: "a" });
    const { instances } = await callJson<{ instances: { lastHeartbeatAt: string }[] }>(server.url, "Discover", { service: "api" }, {});
    const beaten = instances[0]?.lastHeartbeatAt;
    expect(beaten).not.toBe(registered);
    await followUntil(server.url, view, (seen) => seen.instances.get("api/a")?.lastHeartbeatAt === beaten);
    expect(view.revision).toBe("1");
  });

  it("sends the token it is given, and says unauthenticated without one", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens("read r-8a1b77c0e9d24f15\nwrite w-3f9c2a7d41b8e6f0\n") });
    const refused = await callJson(server.url, "Status", {}, {}).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CallError);
    expect((refused as CallError).code).toBe("unauthenticated");
    const watchRefused = await streamJson(server.url, "Watch", {}, {}, new AbortController().signal, () => undefined).catch((error: unknown) => error);
    expect((watchRefused as CallError).code).toBe("unauthenticated");
    const reader = { Authorization: "Bearer r-8a1b77c0e9d24f15" };
    await callJson(server.url, "Register", { instance: { service: "api", id: "a", address: "10.0.0.1:80" } }, { Authorization: "Bearer w-3f9c2a7d41b8e6f0" });
    const drainRefused = await callJson(server.url, "Drain", { service: "api", id: "a" }, reader).catch((error: unknown) => error);
    expect((drainRefused as CallError).code).toBe("permission_denied");
    const view = new WatchView();
    await followUntil(server.url, view, (seen) => seen.instances.size === 1, reader);
    expect(view.sorted().map((instance) => instance.id)).toEqual(["a"]);
  });

  it("is served by the built binary", async () => {
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() });
    onTestFinished(() => serving.kill("SIGTERM").then(() => undefined));
    const url = await serving.ready();
    for (const path of ["/ui", "/ui/page.js", "/ui/view.js", "/ui/style.css"]) expect([path, (await fetch(`${url}${path}`)).status]).toEqual([path, 200]);
  });
});
