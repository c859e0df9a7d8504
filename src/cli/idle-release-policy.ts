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
  /** The heap when the process started serving, in bytes: growth is measured from it until the first release. */
  readonly initialHeapBytes: number;
  /** True when one collection hands back all it can (V8's last-resort collection): a release is then one collection, unprepared. */
  readonly thorough: boolean;
}

/** What a look asks for: a minor collection that restarts V8's allocation-rate sample, a full one, or nothing. */
export type IdleAction = "prepare" | "collect" | undefined;

/**
 * Decides, look by look, when a quiet process should collect its garbage.
 * V8 sizes its heap for the last burst and, with nothing allocating, never
 * collects again, so a registry that took 10,000 registrations and then sat
 * idle kept 160 MiB where 95 were enough. A release needs the heap grown
 * 8 MiB past its smallest size since the last release and the process quiet
 * for `quietLooks` looks in a row. Unless collections are `thorough`, the
 * first quiet look prepares (see `Collector.prepare`) and the quiet looks are
 * counted from there; then the release goes on, one collection a look: a
 * second one always, since on Node 20 the second frees what the first
 * marked (a first that freed under 4 MiB, followed by none, once left a
 * served registry at 128 of its 129 MiB), then more while each frees at
 * least 4 MiB. A busy look ends it, and a steady load never starts one, so
 * collections under load stay V8's own.
 */
export class IdleReleasePolicy {
  private smallestHeap: number;
  private quietLooks = 0;
  private prepared = false;
  private heapBeforeCollecting: number | undefined;
  /** Collections so far in the release under way. */
  private collections = 0;

  constructor(private readonly options: IdleReleaseOptions) {
    this.smallestHeap = options.initialHeapBytes;
  }

  /** What this look should do. */
  next(reading: ProcessReading): IdleAction {
    const { utilization, heapBytes } = reading;
    const collectedBefore = this.heapBeforeCollecting;
    this.heapBeforeCollecting = undefined;
    this.smallestHeap = Math.min(this.smallestHeap, heapBytes);
    if (utilization >= quietBelow) {
      this.quietLooks = 0;
      this.prepared = false;
      this.collections = 0;
      return undefined;
    }
    this.quietLooks++;
    const releasing = !this.options.thorough && collectedBefore !== undefined && (this.collections === 1 || collectedBefore - heapBytes >= worthAnotherBytes);
    if (!releasing) {
      this.collections = 0;
      if (heapBytes < this.smallestHeap + growthBytes) return undefined;
      if (!this.options.thorough && !this.prepared) {
        this.prepared = true;
        this.quietLooks = 0;
        return "prepare";
      }
      if (this.quietLooks < this.options.quietLooks) return undefined;
      // Where this release ends (the smallest size from here on) is what the next one is measured from.
      this.smallestHeap = heapBytes;
      this.prepared = false;
    }
    this.collections++;
    this.heapBeforeCollecting = heapBytes;
    return "collect";
  }
}
