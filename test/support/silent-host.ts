import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import { expect, onTestFinished } from "vitest";

/**
 * A registry URL where a new connection stays "connecting", as it does for
 * minutes to a host that is down: a server whose process is stopped with a
 * full accept queue, so the kernel drops further SYNs. Cleaned up when the
 * test finishes.
 */
export async function silentHost(): Promise<string> {
  const holder = spawn(process.execPath, ["-e", `require("node:net").createServer().listen({ host: "127.0.0.1", port: 0, backlog: 1 }, function () { console.log(this.address().port); })`], { stdio: ["ignore", "pipe", "inherit"] });
  onTestFinished(() => void holder.kill("SIGKILL"));
  const [portLine] = (await once(holder.stdout, "data")) as [Buffer];
  const port = Number(portLine.toString());
  holder.kill("SIGSTOP");
  // Fill the queue (its length is the kernel's to round), until a connection stays unopened.
  const fillers = Array.from({ length: 4 }, () => connect(port, "127.0.0.1").on("error", () => undefined));
  onTestFinished(() => fillers.forEach((filler) => filler.destroy()));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(fillers.some((filler) => filler.connecting)).toBe(true);
  return `http://127.0.0.1:${port}`;
}
