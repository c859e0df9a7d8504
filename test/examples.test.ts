import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { TestRegistry } from "./support/test-registry.js";

/** Runs an example exactly as the README says, against a test registry. */
function runExample(file: string, registry: string, args: string[] = []) {
  const child = spawn(process.execPath, [`examples/${file}`, ...args], { env: { ...process.env, MUSTER_REGISTRY: registry } });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return {
    exited,
    output: () => output,
    stop: (signal: "SIGINT" | "SIGTERM") => child.kill(signal),
  };
}

describe("examples/", () => {
  it("agent.mjs registers, and deregisters on the SIGTERM an orchestrator sends, while watcher.mjs follows it", async () => {
    const server = await TestRegistry.start();
    const watcher = runExample("watcher.mjs", server.url, ["hello"]);
    await expect.poll(() => watcher.output(), { timeout: 10_000 }).toContain("view at revision 0: (empty)");
    const agent = runExample("agent.mjs", server.url);
    await expect.poll(() => agent.output(), { timeout: 10_000 }).toMatch(/agent registered as hello\/[0-9a-f-]{36}/);
    await expect.poll(() => watcher.output(), { timeout: 10_000 }).toMatch(/REGISTERED hello\/\S+ HEALTHY\nview at revision 1: 127\.0\.0\.1:\d+/);
    agent.stop("SIGTERM");
    expect(await agent.exited).toBe(0);
    expect(agent.output()).toContain("deregistered; bye");
    await expect.poll(() => watcher.output(), { timeout: 10_000 }).toMatch(/DEREGISTERED hello\/\S+ HEALTHY \(left the view\)\nview at revision 2: \(empty\)/);
    watcher.stop("SIGINT");
    expect(await watcher.exited).toBe(0);
  });

  it("grpc-js-client.mjs spreads calls over both greeters through the muster: resolver", async () => {
    const server = await TestRegistry.start();
    const example = runExample("grpc-js-client.mjs", server.url);
    expect(await example.exited).toBe(0);
    const lines = example.output().trim().split("\n");
    expect(lines).toHaveLength(6);
    expect(new Set(lines)).toEqual(new Set(["hello from alpha", "hello from beta"]));
    expect((await server.client().discover({ includeUnhealthy: true })).instances).toEqual([]);
  });
});
