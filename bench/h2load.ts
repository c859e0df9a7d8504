import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One load run's outcome. */
export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** What h2load sends: one gRPC method, one request body, this much concurrency. */
export interface Load {
  readonly url: string;
  /** Such as muster.v1.RegistryService/Heartbeat */
  readonly method: string;
  /** The serialized request message; it is framed for gRPC here. */
  readonly message: Uint8Array;
  readonly connections: number;
  readonly streamsPerConnection: number;
  /** Paces each connection (h2load --rps); default: as fast as answers come. */
  readonly requestsPerSecondPerConnection?: number;
  readonly seconds: number;
  /** Request headers besides gRPC's own, such as a deadline (grpc-timeout); default none. */
  readonly headers?: Readonly<Record<string, string>>;
}

const warmUpSeconds = 1;

/**
 * Runs h2load (Debian's nghttp2-client), a C load generator that is not the
 * bottleneck, and reads percentiles from its per-request log. h2load counts
 * HTTP 200 as success whatever the grpc-status, so callers check one call by
 * hand before the run. Asynchronous, so that two loads can run at once.
 */
export async function runH2load(load: Load): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "muster-bench-"));
  try {
    const body = Buffer.alloc(5 + load.message.length);
    body.writeUInt32BE(load.message.length, 1);
    body.set(load.message, 5);
    writeFileSync(join(dir, "body"), body);
    const { stdout: output } = await promisify(execFile)("h2load", [
      "-D", String(load.seconds), "--warm-up-time", String(warmUpSeconds),
      "-c", String(load.connections), "-m", String(load.streamsPerConnection),
      "-d", join(dir, "body"),
      ...(load.requestsPerSecondPerConnection === undefined ? [] : ["--rps", String(load.requestsPerSecondPerConnection)]),
      "-H", "content-type: application/grpc", "-H", "te: trailers",
      ...Object.entries(load.headers ?? {}).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
      "--log-file", join(dir, "log"),
      `${load.url}/${load.method}`,
    ], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    const rate = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(output)?.[1] ?? Number.NaN);
    const counts = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(output);
    // The log also holds the warm-up second's requests (cold code paths), which h2load's own figures leave out.
    const entries = readFileSync(join(dir, "log"), "utf8").trim().split("\n").map((line) => line.split("\t").map(Number));
    const measuredFrom = (entries[0]?.[0] ?? 0) + warmUpSeconds * 1e6;
    const latencies = entries.filter(([startedUs = 0]) => startedUs >= measuredFrom).map(([, , durationUs = 0]) => durationUs / 1000).sort((a, b) => a - b);
    return { requestsPerSecond: rate, succeeded: Number(counts?.[1]), failed: Number(counts?.[2]), p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The value at quantile q (0..1) of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
