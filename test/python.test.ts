import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { pythonWithGrpc } from "./support/python.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { tlsFiles, tlsPem } from "./support/tls-fixtures.js";

const exec = promisify(execFile);

function runPython(script: string, args: string[], stubs: string) {
  const child = spawn(pythonWithGrpc, [`examples/python/${script}`, ...args], { env: { ...process.env, PYTHONPATH: stubs } });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  return { exited: new Promise<number | null>((resolve) => child.on("exit", resolve)), output: () => output, kill: () => child.kill("SIGKILL") };
}

const [readToken, writeToken] = ["r-8a1b77c0e9d24f15", "w-3f9c2a7d41b8e6f0"];

describe("a Python agent and watcher with stubs generated from proto/", () => {
  it.each([
    { registry: "in cleartext", tls: false },
    { registry: "serving TLS and requiring tokens and client certificates", tls: true },
  ])("sees the agent appear, go UNHEALTHY when it stops heartbeating, and expire, with a registry $registry", async ({ tls }) => {
    const stubs = await tempDataDir();
    await exec(pythonWithGrpc, ["-m", "grpc_tools.protoc", "-Iproto", `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, "proto/muster/v1/registry.proto"]);
    const server = await TestRegistry.start(
      tls ? { tls: { cert: tlsPem.cert, key: tlsPem.key, clientCa: tlsPem.clientCa }, accessTokens: parseAccessTokens(`read ${readToken}\nwrite ${writeToken}`) } : {},
    );
    const registry = new URL(server.url).host;
    const as = (token: string) => (tls ? ["--ca", tlsFiles.ca, "--token", token, "--cert", tlsFiles.clientCert, "--key", tlsFiles.clientKey] : []);

    const watcher = runPython("watcher.py", ["--registry", registry, ...as(readToken), "--service", "py-agent", "--until-expired", "a-1"], stubs);
    await expect.poll(() => watcher.output(), { timeout: 10_000 }).toContain("watching py-agent");
    const agent = runPython("agent.py", ["--registry", registry, ...as(writeToken), "--service", "py-agent", "--id", "a-1", "--ttl", "1", "--deregister-after", "1", "--beats", "4"], stubs);
    try {
      expect(await watcher.exited, watcher.output()).toBe(0);
      const events = watcher.output().trim().split("\n").slice(1);
      expect(events.map((line) => line.split(" ").slice(0, 3).join(" "))).toEqual([
        "EVENT_TYPE_REGISTERED py-agent/a-1 HEALTH_STATUS_HEALTHY",
        "EVENT_TYPE_HEALTH_CHANGED py-agent/a-1 HEALTH_STATUS_UNHEALTHY",
        "EVENT_TYPE_EXPIRED py-agent/a-1 HEALTH_STATUS_UNHEALTHY",
      ]);
      expect(agent.output()).toMatch(/registered py-agent\/a-1 at revision 1\nstopped heartbeating after 4 heartbeats/);
      const reader = tls ? createRegistryClient({ baseUrl: server.url, ca: tlsPem.ca, cert: tlsPem.clientCert, key: tlsPem.clientKey, token: readToken }) : server.client();
      expect((await reader.discover({ includeUnhealthy: true })).instances).toEqual([]);
    } finally {
      agent.kill();
      watcher.kill();
    }
  });

  it("tells the Python agent, at its next heartbeat, that an operator drained it, and that it is back", async () => {
    const stubs = await tempDataDir();
    await exec(pythonWithGrpc, ["-m", "grpc_tools.protoc", "-Iproto", `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, "proto/muster/v1/registry.proto"]);
    const server = await TestRegistry.start();
    const agent = runPython("agent.py", ["--registry", new URL(server.url).host, "--service", "py-agent", "--id", "a-2", "--ttl", "1"], stubs);
    try {
      await expect.poll(() => agent.output(), { timeout: 10_000 }).toContain("registered py-agent/a-2");
      await server.client().drain({ service: "py-agent", id: "a-2", reason: "from the test" });
      await expect.poll(() => agent.output(), { timeout: 5_000 }).toContain("drained by an operator: taking no new work");
      await server.client().undrain({ service: "py-agent", id: "a-2" });
      await expect.poll(() => agent.output(), { timeout: 5_000 }).toContain("undrained: taking work again");
      expect(agent.output().trim().split("\n")).toEqual(["registered py-agent/a-2 at revision 1", "drained by an operator: taking no new work", "undrained: taking work again"]);
    } finally {
      agent.kill();
    }
  });
});
