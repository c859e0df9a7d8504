import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const module = (name: string) => JSON.stringify(fileURLToPath(new URL(`../dist/src/cli/${name}.js`, import.meta.url)));
const MiB = 1024 * 1024;

/**
 * A fresh Node process (V8's flags are process-wide) with the young
 * generation capped at 16 MiB and following the load, looking every 100 ms:
 * first a light load (a little allocation every 20 ms, the loop mostly
 * idle, though enough to grow an uncapped young generation), then a saturating one (allocation turn after turn). Returns the
 * largest young generation (MiB) seen in each phase.
 */
function youngGenerationByLoad(): { light: number; busy: number } {
  const script = `
    import v8 from "node:v8";
    import { setImmediate as turn, setTimeout as sleep } from "node:timers/promises";
    import { capYoungGeneration } from ${module("young-generation-cap")};
    import { followLoadWithMemory } from ${module("memory-follows-load")};
    const cap = capYoungGeneration(${16 * MiB});
    const stop = followLoadWithMemory(cap, ${16 * MiB}, 100);
    const young = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space").space_size;
    let kept = [];
    const allocate = (count) => {
      for (let i = 0; i < count; i++) {
        kept.push({ i, tags: [String(i)] });
        if (kept.length > 60_000) kept = kept.slice(30_000);
      }
    };
    const phase = async (ms, count, pause) => {
      let largest = 0;
      for (const end = performance.now() + ms; performance.now() < end; await pause()) {
        allocate(count);
        largest = Math.max(largest, young());
      }
      return largest;
    };
    const light = await phase(2_500, 2_500, () => sleep(20));
    const busy = await phase(2_000, 10_000, () => turn());
    stop();
    cap.stop();
    console.log(JSON.stringify({ light, busy }));
  `;
  const sizes = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })) as { light: number; busy: number };
  return { light: sizes.light / MiB, busy: sizes.busy / MiB };
}

/** V8 13 (Node 24) also grows its young generation a page at a time, which the growth factor does not govern. */
const growsByPages = Number(process.versions.v8.split(".")[0]) >= 13;

it("keeps the young generation at 4 MiB under light load, and lets it grow to its cap under a saturating one", () => {
  const { light, busy } = youngGenerationByLoad();
  expect(light).toBeLessThanOrEqual(4);
  if (growsByPages) expect(busy).toBeGreaterThanOrEqual(16);
  else expect(busy).toBe(16);
});
