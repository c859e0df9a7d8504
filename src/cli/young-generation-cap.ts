import v8 from "node:v8";
import { PerformanceObserver } from "node:perf_hooks";

/** What V8 grows its young generation by at a collection, by default. */
const defaultGrowthFactor = 2;

/** The young generation's committed bytes, or undefined on a V8 that names its spaces otherwise. */
function youngGenerationBytes(): number | undefined {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size;
}

/**
 * Keeps V8's young generation from growing past `maxBytes`, so that the
 * memory a burst or a steady load makes V8 commit stays bounded the same way
 * on every Node version. V8 doubles the young generation while much survives
 * its collections, up to 32 MiB on Node 20 and 22 and 128 MiB on Node 24, and
 * it stays that size under any steady load. With 10,000 instances
 * heartbeating 1,000 times a second that was 245-267 MiB resident on Node 24,
 * and 16 MiB brought it to 149-172 (BENCHMARKS.md, "Memory").
 *
 * Node takes V8's own size limit (`--max-semi-space-size`) only on the
 * command line, and V8 reads it only when the heap is made. The growth
 * factor it reads at each collection: after every collection this looks at
 * the young generation's size and lets it double only while it is under
 * `maxBytes`. It therefore stops at the first doubling at or above
 * `maxBytes`, and grows again once V8 has shrunk it (which V8 does when the
 * allocation rate is low, and an idle release forces). On Node 20 and 22
 * that holds it at `maxBytes`. V8 13 (Node 24) also grows it a page (1 MiB)
 * at a time under heavy survival, which the factor does not govern: there
 * it holds near `maxBytes` under the registry's loads, and in a synthetic
 * worst case climbed to 2.5 times it, still a sixth of its own 128 MiB.
 * V8's flags are process-wide, so this is for the serving process, not a
 * library.
 *
 * Returns the cap, which can be moved (`setLimit`) or stopped.
 */
export function capYoungGeneration(maxBytes: number): YoungGenerationCap {
  let limit = maxBytes;
  let growing = true;
  const follow = () => {
    const bytes = youngGenerationBytes();
    if (bytes === undefined || bytes < limit === growing) return;
    growing = !growing;
    v8.setFlagsFromString(`--semi-space-growth-factor=${growing ? defaultGrowthFactor : 1}`);
  };
  const observer = new PerformanceObserver(follow);
  observer.observe({ entryTypes: ["gc"] });
  follow();
  return {
    setLimit(bytes) {
      limit = bytes;
      follow();
    },
    stop() {
      observer.disconnect();
      if (!growing) v8.setFlagsFromString(`--semi-space-growth-factor=${defaultGrowthFactor}`);
    },
  };
}

/** A running cap. */
export interface YoungGenerationCap {
  /** Moves the cap. V8 shrinks the young generation only on its own terms, so a lower cap stops growth rather than giving memory back. */
  setLimit(bytes: number): void;
  /** Stops capping and lets V8 grow it as it would. */
  stop(): void;
}
