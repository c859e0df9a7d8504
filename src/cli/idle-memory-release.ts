import v8 from "node:v8";
import { performance } from "node:perf_hooks";
import { runInNewContext } from "node:vm";
import type { Logger } from "pino";
import { IdleReleasePolicy } from "./idle-release-policy.js";
import { lookAtLoad } from "./load-look.js";

/** How the process collects its garbage on V8 as it runs here. */
interface Collector {
  /** A full collection that returns freed memory to the system. */
  readonly collect: () => void;
  /**
   * Where one full collection is not enough (Node 20): a minor collection at
   * the start of the quiet spell. V8 shrinks its young generation only when
   * the allocation rate it sampled since the previous collection is low, and
   * that sample otherwise reaches back into the burst, so the first full
   * collection shrank it in some runs and not in others (RSS 100 or 155 MiB).
   */
  readonly prepare?: () => void;
}

/**
 * V8's collector, exposed for this process only: the flag applies to
 * contexts made after it, so the global object gets no `gc`. From V8 12
 * (Node 22) an ordinary collection keeps freed pages pooled for reuse, and
 * only a "last resort" one hands them back. V8 11 (Node 20) has no such
 * option: there an ordinary collection runs with --optimize-for-size set for
 * its length, which makes it compact the old generation as a last-resort one
 * would (quiet RSS 93-97 MiB in six runs, against 98-105 without).
 */
function exposeCollector(): Collector | undefined {
  v8.setFlagsFromString("--expose-gc");
  const exposed: unknown = runInNewContext("gc");
  if (typeof exposed !== "function") return undefined;
  const gc = exposed as (options?: { type: "minor" } | { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
  const lastResort = Number(process.versions.v8.split(".")[0]) >= 12;
  if (lastResort) return { collect: () => gc({ type: "major", execution: "sync", flavor: "last-resort" }) };
  const collect = () => {
    v8.setFlagsFromString("--optimize-for-size");
    try {
      gc();
    } finally {
      v8.setFlagsFromString("--no-optimize-for-size");
    }
  };
  return { collect, prepare: () => gc({ type: "minor" }) };
}

/** The heap V8 holds from the system (committed), in bytes. */
export function currentHeapBytes(): number {
  return v8.getHeapStatistics().total_heap_size;
}

/** How often the process looks at itself. */
const lookEveryMs = 1_000;

/**
 * Collects garbage once the process has been quiet for `quietMs` (under 2%
 * busy every second of it) after its heap grew, so a burst's memory goes back
 * to the system; see `IdleReleasePolicy`. On Node 20 V8 shrinks its young
 * generation only when the allocation rate over the last 5 seconds is low,
 * so a `quietMs` under 5,000 frees less there. Each full collection pauses
 * the process (with 10,000 instances: 20-50 ms on Node 20, two or three to
 * a release, and one of 70-150 ms on Node 22 and 24; with 100,000: seven of
 * 120-200 ms, or one of 400 ms) and is logged at debug level.
 * `initialHeapBytes` is the heap growth counts from (default: the heap now);
 * pass the heap as serving started when this starts later, since agents
 * re-registering right after a restart can be done by then, and a heap
 * measured after them would never have grown. Returns the function that
 * stops looking.
 */
export function releaseMemoryWhenIdle(quietMs: number, logger: Logger, initialHeapBytes = currentHeapBytes()): () => void {
  // Exposing the collector makes a V8 context (a few ms), so not on the way to the first answer.
  let stop = () => clearTimeout(start);
  const start = setTimeout(() => {
    const collector = exposeCollector();
    if (collector === undefined) {
      logger.warn("V8 did not expose its collector; memory taken by a burst stays with the process");
      return;
    }
    const { collect, prepare } = collector;
    const policy = new IdleReleasePolicy({ quietLooks: Math.max(1, Math.round(quietMs / lookEveryMs)), initialHeapBytes, thorough: prepare === undefined });
    stop = lookAtLoad(lookEveryMs, (utilization) => {
      const before = currentHeapBytes();
      const action = policy.next({ utilization, heapBytes: before });
      if (action === "prepare") prepare?.();
      if (action === "collect") {
        const started = performance.now();
        collect();
        const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);
        logger.debug({ heapMiB: mib(before), afterMiB: mib(currentHeapBytes()), pauseMs: Math.round(performance.now() - started) }, "quiet: collected garbage to hand memory back");
      }
    });
  }, lookEveryMs).unref();
  return () => stop();
}
