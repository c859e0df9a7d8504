import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import net from "node:net";

/** A port free right now on 127.0.0.1, for a process that must keep one address across restarts. */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A process's resident memory in MiB, from /proc. */
export function residentMiB(pid: number | undefined): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
}

let collectGarbage: (() => void) | undefined;

/** Runs a full garbage collection of this process's V8 heap. */
export function fullCollection(): void {
  if (collectGarbage === undefined) {
    // A context made after the flag is set has V8's gc(), so tests need not run with --expose-gc.
    setFlagsFromString("--expose-gc");
    collectGarbage = runInNewContext("gc") as () => void;
  }
  collectGarbage();
}

/**
 * Bytes in use on this process's V8 heap after two full collections: what
 * is still referenced, without the garbage a plain heapUsed also counts.
 */
export function liveHeapBytes(): number {
  fullCollection();
  fullCollection();
  return process.memoryUsage().heapUsed;
}
