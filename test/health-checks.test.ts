import http from "node:http";
import net from "node:net";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it, onTestFinished } from "vitest";
import { grpcProbe, httpProbe, probeOnce, reportProbedHealth, tcpProbe } from "../src/client/health-probe.js";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { freePort } from "./support/machine.js";
import { MusterProcess, type Exit } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// `muster register --check-*` stands beside a service that cannot heartbeat for itself, as Consul's agent does.

/** An HTTP server whose health endpoint answers `status.code`; the test changes it. */
async function httpService(status: { code: number }): Promise<string> {
  const server = http.createServer((request, response) => {
    if (request.url === "/hang") return;
    response.writeHead(status.code, status.code === 302 ? { location: "/login" } : {}).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A TCP listener on `port` that can be closed and opened again, as a database restarts. */
function tcpService(port: number): { open(): Promise<void>; close(): Promise<void> } {
  let server: net.Server | undefined;
  const close = () => new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  onTestFinished(close);
  return {
    open: () => new Promise<void>((resolve) => (server = net.createServer((socket) => socket.destroy()).listen(port, "127.0.0.1", resolve))),
    close,
  };
}

const healthOf = async (probe: Parameters<typeof probeOnce>[0], timeoutMs = 1_000) => probeOnce(probe, timeoutMs);

describe("health probes", () => {
  it("judge HTTP answers as Kubernetes does, 429 as DEGRADED, and say why a probe failed", async () => {
    const status = { code: 200 };
    const base = await httpService(status);
    const probe = httpProbe(`${base}/healthz`);
    const seen: [number, HealthStatus, string][] = [];
    for (const code of [200, 204, 302, 429, 500, 503, 404]) {
      status.code = code;
      const { health, detail } = await healthOf(probe);
      seen.push([code, health, detail]);
    }
    expect(seen).toEqual([200, 204, 302, 429, 500, 503, 404].map((code) => [
      code,
      code < 400 ? HealthStatus.HEALTHY : code === 429 ? HealthStatus.DEGRADED : HealthStatus.UNHEALTHY,
      `GET ${base}/healthz answered ${code}`,
    ]));
    expect(await healthOf(httpProbe(`${base}/hang`), 200)).toEqual({ health: HealthStatus.UNHEALTHY, detail: "no answer within 200ms" });
    const closedPort = await freePort();
    expect(await healthOf(httpProbe(`http://127.0.0.1:${closedPort}/`))).toEqual({ health: HealthStatus.UNHEALTHY, detail: `connect ECONNREFUSED 127.0.0.1:${closedPort}` });
  });

  it("open TCP connections, and ask gRPC servers for their standard health", async () => {
    const port = await freePort();
    const database = tcpService(port);
    expect(await healthOf(tcpProbe(`127.0.0.1:${port}`))).toEqual({ health: HealthStatus.UNHEALTHY, detail: `connect ECONNREFUSED 127.0.0.1:${port}` });
    await database.open();
    expect(await healthOf(tcpProbe(`127.0.0.1:${port}`))).toEqual({ health: HealthStatus.HEALTHY, detail: `connected to 127.0.0.1:${port}` });

    // The registry serves grpc.health.v1 itself: a service with a HEALTHY instance is SERVING.
    const registry = await TestRegistry.start();
    const target = new URL(registry.url).host;
    expect((await healthOf(grpcProbe(target))).health).toBe(HealthStatus.HEALTHY);
    await registry.client().register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", ttl: durationFromMs(600_000) } });
    expect(await healthOf(grpcProbe(target, "api"))).toEqual({ health: HealthStatus.HEALTHY, detail: `${target} is SERVING` });
    await registry.client().heartbeat({ service: "api", id: "a", status: HealthStatus.UNHEALTHY });
    expect(await healthOf(grpcProbe(target, "api"))).toEqual({ health: HealthStatus.UNHEALTHY, detail: `${target} is NOT_SERVING` });
    expect((await healthOf(grpcProbe(target, "nothing-here"))).detail).toMatch(/^\[not_found\] /);
  });

  it("report each change of health once, and stop when told", async () => {
    const status = { code: 200 };
    const probe = httpProbe(`${await httpService(status)}/healthz`);
    const reported: HealthStatus[] = [];
    const stop = new AbortController();
    const running = reportProbedHealth(probe, (health) => reported.push(health), stop.signal, { intervalMs: 20 });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 150));
    await settle();
    status.code = 500;
    await settle();
    status.code = 429;
    await settle();
    status.code = 200;
    await settle();
    stop.abort();
    await running;
    expect(reported).toEqual([HealthStatus.UNHEALTHY, HealthStatus.DEGRADED, HealthStatus.HEALTHY]);
  });
});

describe("muster register --check-*", () => {
  it("registers once the first check passes, reports what each change of the check says, and deregisters on Ctrl-C", async () => {
    const registry = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() });
    const url = await registry.ready();
    onTestFinished(() => registry.kill("SIGTERM").then(() => undefined));
    const env = { MUSTER_REGISTRY: url };
    const port = await freePort();
    const database = tcpService(port);
    const watch = MusterProcess.spawn(["watch", "--all"], env);
    onTestFinished(() => watch.kill("SIGINT").then(() => undefined));

    const agent = MusterProcess.spawn(["register", "postgres", "--address", `127.0.0.1:${port}`, "--id", "db-1", "--ttl", "2s", "--check-tcp", `127.0.0.1:${port}`, "--check-interval", "100ms"], env);
    onTestFinished(() => agent.kill("SIGKILL").then(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(agent.lines()).toEqual([]);
    await database.open();
    await agent.line((line) => line.startsWith("registered postgres/db-1"));

    await database.close();
    await agent.line((line) => line === `check: connect ECONNREFUSED 127.0.0.1:${port}; reporting UNHEALTHY`);
    await watch.line((line) => line.includes("HEALTH_STATUS_UNHEALTHY"));
    await database.open();
    await agent.line((line) => line === `check: connected to 127.0.0.1:${port}; reporting HEALTHY`);
    await watch.line((line) => line.includes("EVENT_TYPE_HEALTH_CHANGED") && line.includes('"health":"HEALTH_STATUS_HEALTHY"'));

    const left: Exit = await agent.kill("SIGINT");
    expect(left.code).toBe(0);
    expect(left.stderr).toBe(`muster: check: connect ECONNREFUSED 127.0.0.1:${port}; registering once it passes\n`);
    expect(left.stdout.split("\n").slice(1)).toEqual([
      `check: connect ECONNREFUSED 127.0.0.1:${port}; reporting UNHEALTHY`,
      `check: connected to 127.0.0.1:${port}; reporting HEALTHY`,
      "deregistered postgres/db-1",
      "",
    ]);
    await watch.line((line) => line.includes("EVENT_TYPE_DEREGISTERED"));
    const types = watch.lines().map((line) => (JSON.parse(line) as { type: string; instance: { health: string } }));
    expect(types.map((event) => [event.type, event.instance.health])).toEqual([
      ["EVENT_TYPE_REGISTERED", "HEALTH_STATUS_HEALTHY"],
      ["EVENT_TYPE_HEALTH_CHANGED", "HEALTH_STATUS_UNHEALTHY"],
      ["EVENT_TYPE_HEALTH_CHANGED", "HEALTH_STATUS_HEALTHY"],
      ["EVENT_TYPE_DEREGISTERED", "HEALTH_STATUS_HEALTHY"],
    ]);
  });

  it("ends with the registry's refusal when it rejects the instance, checks and all", async () => {
    const registry = await TestRegistry.start();
    const port = await freePort();
    const database = tcpService(port);
    await database.open();
    const exit = await MusterProcess.run(["register", "Bad_Name", "--address", `127.0.0.1:${port}`, "--check-tcp", `127.0.0.1:${port}`, "--check-interval", "100ms"], { MUSTER_REGISTRY: registry.url });
    expect([exit.code, exit.stderr]).toEqual([1, expect.stringMatching(/^muster: the registry rejected the instance: instance\.service: must be a DNS-1123 label/)]);
  });

  it("refuses more than one check, or a check target it cannot use, in one line", async () => {
    const cases: [string[], string][] = [
      [["--check-tcp", "127.0.0.1:1", "--check-http", "http://127.0.0.1:1/"], "muster: give one check: --check-http, --check-tcp or --check-grpc\n"],
      [["--check-tcp", "db.internal"], 'muster: --check-tcp must be host:port, such as 127.0.0.1:5432 or [::1]:5432 (got "db.internal")\n'],
      [["--check-http", "127.0.0.1:8080/healthz"], 'muster: --check-http must be an http:// or https:// URL (got "127.0.0.1:8080/healthz")\n'],
      [["--check-tcp", "127.0.0.1:1", "--check-interval", "often"], "muster: option '--check-interval <duration>' argument 'often' is invalid. must be a duration such as 500ms, 10s, 1m or 1h\n"],
    ];
    for (const [flags, stderr] of cases) {
      const exit = await MusterProcess.run(["register", "db", "--address", "127.0.0.1:1", ...flags], { MUSTER_REGISTRY: "http://127.0.0.1:1" });
      expect([flags, exit.code, exit.stderr]).toEqual([flags, 1, stderr]);
    }
  });
});
