import v8 from "node:v8";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { runInNewContext } from "node:vm";
import type { Logger } from "pino";

/** Event-loop utilization below which a look counts as quiet. An idle registry measured 0.000-0.001; one answering 100 heartbeats a second, 0.12. */
const quietBelow = 0.02;
/** How much the heap must have grown since it was last this small before a quiet look collects. */
const growthBytes = 8 * 1024 * 1024;
/** A collection that frees less than this ends a release: the next would free little or nothing. */
const worthAnotherBytes = 4 * 1024 * 1024;

/** What one look sees. */
export interface ProcessReading {
  /** The share of the span since the last look that the event loop was busy, 0 to 1. */
  readonly utilization: number;
  /** The heap V8 holds from the system (committed), in bytes. */
  readonly heapBytes: number;
}

/** How an `IdleReleasePolicy` decides. */
export interface IdleReleaseOptions {
  /** Quiet looks in a row before a release starts. */
  readonly quietLooks: number;
  /** The heap at the first look, in bytes: growth is measured from it until the first release. */
  readonly initialHeapBytes: number;
  /** True when one collection hands back all it can (V8's last-resort collection), so a release is one collection. */
  readonly thorough: boolean;
}

/**
 * Decides, look by look, when a quiet process should collect its garbage.
 * V8 sizes its heap for the last burst and, with nothing allocating, never
 * collects again, so a registry that took 10,000 registrations and then sat
 * idle kept 160 MiB where 100 were enough. A release starts once the process
 * has been quiet for `quietLooks` looks in a row and its heap has grown
 * 8 MiB past its smallest size since the last release. Unless collections
 * are `thorough`, it goes on, one collection a look, while each frees at
 * least 4 MiB (on Node 20 the second frees what the first marked). A busy
 * look ends it, and a steady load never starts one, so collections under
 * load stay V8's own.
 */
export class IdleReleasePolicy {
  private smallestHeap: number;
  private quietLooks = 0;
  private heapBeforeCollecting: number | undefined;

  constructor(private readonly options: IdleReleaseOptions) {
    this.smallestHeap = options.initialHeapBytes;
  }

  /** True when this look should collect. */
  next(reading: ProcessReading): boolean {
    const { utilization, heapBytes } = reading;
    const collectedBefore = this.heapBeforeCollecting;
    this.heapBeforeCollecting = undefined;
    this.smallestHeap = Math.min(this.smallestHeap, heapBytes);
    if (utilization >= quietBelow) {
      this.quietLooks = 0;
      return false;
    }
    this.quietLooks++;
    const releasing = !this.options.thorough && collectedBefore !== undefined && collectedBefore - heapBytes >= worthAnotherBytes;
    if (!releasing) {
      if (this.quietLooks < this.options.quietLooks || heapBytes < this.smallestHeap + growthBytes) return false;
      // Where this release ends (the smallest size from here on) is what the next one is measured from.
      this.smallestHeap = heapBytes;
    }
    this.heapBeforeCollecting = heapBytes;
    return true;
  }
}

/** A full collection that returns freed memory to the system, and whether one is all it takes. */
interface Collector {
  readonly collect: () => void;
  readonly thorough: boolean;
}

/**
 * V8's collector, exposed for this process only: the flag applies to
 * contexts made after it, so the global object gets no `gc`. From V8 12
 * (Node 22) an ordinary collection keeps freed pages pooled for reuse, and
 * only a "last resort" one hands them back; V8 11 (Node 20) has no such
 * option and hands them back after an ordinary one.
 */
function exposeCollector(): Collector | undefined {
  v8.setFlagsFromString("--expose-gc");
  const exposed: unknown = runInNewContext("gc");
  if (typeof exposed !== "function") return undefined;
  const gc = exposed as (options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
  const lastResort = Number(process.versions.v8.split(".")[0]) >= 12;
  return lastResort ? { collect: () => gc({ type: "major", execution: "sync", flavor: "last-resort" }), thorough: true } : { collect: () => gc(), thorough: false };
}

/** How often the process looks at itself. */
const lookEveryMs = 1_000;

/**
 * Collects garbage once the process has been quiet for `quietMs` (under 2%
 * busy every second of it) after its heap grew, so a burst's memory goes back
 * to the system; see `IdleReleasePolicy`. V8 measures the allocation rate
 * over 5 seconds and on Node 20 shrinks its young generation only when that
 * rate is low, so a shorter `quietMs` frees less there. Each collection
 * pauses the process (30-40 ms on Node 20, 70-150 ms for the last-resort
 * collection of Node 22 and 24, with 10,000 instances) and is logged at
 * debug level.
 * Returns the function that stops looking.
 */
export function releaseMemoryWhenIdle(quietMs: number, logger: Logger): () => void {
  // Exposing the collector makes a V8 context (a few ms), so not on the way to the first answer.
  let timer = setTimeout(() => {
    const collector = exposeCollector();
    if (collector === undefined) {
      logger.warn("V8 did not expose its collector; memory taken by a burst stays with the process");
      return;
    }
    const heapBytes = () => v8.getHeapStatistics().total_heap_size;
    const policy = new IdleReleasePolicy({ quietLooks: Math.max(1, Math.round(quietMs / lookEveryMs)), initialHeapBytes: heapBytes(), thorough: collector.thorough });
    let since: EventLoopUtilization = performance.eventLoopUtilization();
    timer = setInterval(() => {
      const { utilization } = performance.eventLoopUtilization(since);
      const before = heapBytes();
      if (policy.next({ utilization, heapBytes: before })) {
        const started = performance.now();
        collector.collect();
        const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);
        logger.debug({ heapMiB: mib(before), afterMiB: mib(heapBytes()), pauseMs: Math.round(performance.now() - started) }, "quiet: collected garbage to hand memory back");
      }
      // From here, so a collection's own time does not count as load at the next look.
      since = performance.eventLoopUtilization();
    }, lookEveryMs).unref();
  }, lookEveryMs).unref();
  // Node's timers are one kind: clearInterval stops the first timeout as well as the looks.
  return () => clearInterval(timer);
}
