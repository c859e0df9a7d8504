import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built `muster` binary: what package.json's bin and `npm start` run. */
export const musterBin = fileURLToPath(new URL("../../dist/bin/muster.cjs", import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly stdout: string;
}

/**
 * One run of the `muster` binary in a child process, so tests can read its
 * output as it comes, SIGKILL it, send it SIGINT, or see how it fails.
 */
export class MusterProcess {
  private stdout = "";
  private stderr = "";
  private closed = false;
  readonly exited: Promise<Exit>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    // "close", not "exit": only then has all of the child's output been read.
    this.exited = new Promise((resolve) => {
      child.once("close", (code, signal) => {
        this.closed = true;
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Runs `muster args`, through `launcher` when given (a command that execs the rest, such as `prlimit --fsize=N`), from `bin` (default the build's). */
  static spawn(args: readonly string[], env: Record<string, string> = {}, launcher: readonly string[] = [], bin = musterBin): MusterProcess {
    const [command = process.execPath, ...rest] = [...launcher, process.execPath, bin, ...args];
    const child = spawn(command, rest, {
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new MusterProcess(child);
  }

  /** `muster serve`; MUSTER_ADDR defaults to a free port on 127.0.0.1. */
  static serve(env: Record<string, string>, args: readonly string[] = [], launcher: readonly string[] = [], bin = musterBin): MusterProcess {
    return MusterProcess.spawn(["serve", ...args], { MUSTER_ADDR: "127.0.0.1:0", ...env }, launcher, bin);
  }

  /** Runs a command to the end. */
  static run(args: readonly string[], env: Record<string, string> = {}): Promise<Exit> {
    return MusterProcess.spawn(args, env).exited;
  }

  /** Waits for the "muster is serving" log line and returns the URL in it. */
  async ready(timeoutMs = 15_000): Promise<string> {
    const line = await this.line((text) => text.includes("muster is serving"), timeoutMs);
    return (JSON.parse(line) as { url: string }).url;
  }

  /** The process id, for reading its memory from /proc. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The stdout lines so far. */
  lines(): string[] {
    return this.stdout.split("\n").filter((line) => line !== "");
  }

  /** Waits for a stdout line that passes `test`, looking as each chunk arrives (the start-up benchmark times this). */
  line(test: (line: string) => boolean, timeoutMs = 15_000): Promise<string> {
    const { child } = this;
    return new Promise((resolve, reject) => {
      const look = () => {
        const found = this.lines().find(test);
        if (found === undefined) return;
        stop();
        resolve(found);
      };
      const exited = () => {
        stop();
        reject(new Error(`muster exited: ${this.stdout}${this.stderr}`));
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`no matching line within ${timeoutMs}ms; stdout: ${this.stdout} stderr: ${this.stderr}`));
      }, timeoutMs);
      const stop = () => {
        clearTimeout(timer);
        child.stdout?.off("data", look);
        child.off("close", exited);
      };
      // Registered after the constructor's listener, so each chunk is in this.stdout before `look` runs.
      child.stdout?.on("data", look);
      // "close" comes after the last of stdout has been read.
      child.once("close", exited);
      look();
      if (this.closed) exited();
    });
  }

  kill(signal: NodeJS.Signals): Promise<Exit> {
    this.child.kill(signal);
    return this.exited;
  }

  /** Sends a signal the process lives through, such as SIGHUP. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
