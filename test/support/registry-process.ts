import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const mainScript = fileURLToPath(new URL("../../dist/src/main.js", import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly stdout: string;
}

/**
 * `npm start`'s program in a child process, so tests can SIGKILL it, send
 * it SIGTERM, or see how it fails to start.
 */
export class RegistryProcess {
  private stdout = "";
  private stderr = "";
  readonly exited: Promise<Exit>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  /** Starts the program; MUSTER_ADDR defaults to a free port on 127.0.0.1. */
  static spawn(env: Record<string, string>): RegistryProcess {
    const child = spawn(process.execPath, [mainScript], {
      env: { ...process.env, MUSTER_ADDR: "127.0.0.1:0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new RegistryProcess(child);
  }

  /** Waits for the "muster is serving" log line and returns the URL in it. */
  async ready(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const line of this.stdout.split("\n")) {
        if (!line.includes("muster is serving")) continue;
        const { url } = JSON.parse(line) as { url: string };
        return url;
      }
      if (this.child.exitCode !== null) throw new Error(`registry exited: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`registry not ready within ${timeoutMs}ms: ${this.stdout}${this.stderr}`);
  }

  kill(signal: NodeJS.Signals): Promise<Exit> {
    this.child.kill(signal);
    return this.exited;
  }
}
