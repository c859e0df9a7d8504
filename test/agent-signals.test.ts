import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { TestRegistry } from "./support/test-registry.js";

/** A process that registers with closeOnSignals: ["SIGTERM"] and otherwise just waits. */
const agentProgram = `
  import { createRegistryClient, RegistryAgent } from "muster";
  const agent = new RegistryAgent(createRegistryClient({ baseUrl: process.env.MUSTER_REGISTRY }),
    { service: "signalled", id: "s-1", address: "10.0.0.1:80", ttl: { seconds: 60n, nanos: 0 } },
    { closeOnSignals: ["SIGTERM"] });
  await agent.until("registered");
  console.log("registered");
  setInterval(() => undefined, 1 << 30);
`;

describe("RegistryAgent closeOnSignals", () => {
  it("deregisters on SIGTERM, then lets the signal end the process as it would have", async () => {
    const server = await TestRegistry.start();
    const child = spawn(process.execPath, ["--input-type=module", "-e", agentProgram], { env: { ...process.env, MUSTER_REGISTRY: server.url } });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    await expect.poll(() => output, { timeout: 10_000 }).toContain("registered");
    expect((await server.client().discover({ service: "signalled" })).instances).toHaveLength(1);
    child.kill("SIGTERM");
    expect(await exited).toBe("SIGTERM");
    expect((await server.client().discover({ service: "signalled", includeUnhealthy: true })).instances).toEqual([]);
  });
});
