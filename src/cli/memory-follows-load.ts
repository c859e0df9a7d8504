import v8 from "node:v8";
import { lookAtLoad } from "./load-look.js";
import type { YoungGenerationCap } from "./young-generation-cap.js";

/** Event-loop utilization under which a second counts as light: 1,000 heartbeats a second measured 0.08-0.16, a registration burst from one client 0.31-0.34, a saturating load 0.9 and over. */
const lightBelow = 0.5;
/** The young generation's cap under light load. */
const lightYoungBytes = 4 * 1024 * 1024;
/** How far past what its last full collection kept V8 lets the old generation grow under light load, in percent; 0 is V8's own factor. */
const lightOldGrowthPercent = 20;

/**
 * Sizes V8's heap to the load, second by second. Under a saturating load a
 * large young generation and V8's own old-generation growth are what
 * throughput needs: holding them small costs Register a quarter of its
 * rate. Under light load they only hold garbage: V8 doubled the young
 * generation to the cap during a burst and let the old generation reach
 * about twice the live heap, so 10,000 instances heartbeating 1,000 times a
 * second kept 110-111 MiB resident. While the event loop is under half busy
 * the young generation is capped at 4 MiB (or `busyYoungBytes`, if smaller)
 * and the old generation grows 20% between full collections; a busy second
 * gives both back to V8 (`busyYoungBytes` is the cap then). V8 reads both
 * flags at each collection, so a change takes effect at the next one. A
 * young generation that grew while busy stays grown until V8 or an idle
 * release shrinks it. With 10,000 instances and 100 watchers, right after
 * the registrations and then while they heartbeat: Node 20 129-130 -> 102-104
 * and 110-111 -> 101-102 MiB; Node 22 154-157 -> 150-154 and 119-124 -> 110-112;
 * Node 24 162-164 -> 125-135 and 133-135 -> 115-116 (BENCHMARKS.md, "Memory"
 * and "Session 22").
 *
 * Returns the function that stops following and leaves the old generation's
 * growth to V8.
 */
export function followLoadWithMemory(cap: YoungGenerationCap, busyYoungBytes: number, lookEveryMs = 1_000): () => void {
  let light: boolean | undefined;
  const size = (nowLight: boolean) => {
    if (nowLight === light) return;
    light = nowLight;
    cap.setLimit(light ? Math.min(lightYoungBytes, busyYoungBytes) : busyYoungBytes);
    v8.setFlagsFromString(`--heap-growing-percent=${light ? lightOldGrowthPercent : 0}`);
  };
  size(true);
  const stopLooking = lookAtLoad(lookEveryMs, (utilization) => size(utilization < lightBelow));
  return () => {
    stopLooking();
    v8.setFlagsFromString("--heap-growing-percent=0");
  };
}
