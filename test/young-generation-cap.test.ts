import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const capModule = fileURLToPath(new URL("../dist/src/cli/young-generation-cap.js", import.meta.url));
const MiB = 1024 * 1024;

/**
 * The largest young generation (MiB) of a fresh Node process that allocates
 * like a server under load: many short-lived objects, some living across
 * collections, turn by turn of the event loop. V8's flags are process-wide,
 * so each run gets a process of its own. `capMiB` undefined runs uncapped.
 */
function largestYoungGenerationMiB(capMiB: number | undefined, stopAfterTurns = Infinity): number {
  const script = `
    import v8 from "node:v8";
    import { setImmediate as turn } from "node:timers/promises";
    import { capYoungGeneration } from ${JSON.stringify(capModule)};
    const cap = ${capMiB === undefined ? "undefined" : `capYoungGeneration(${capMiB * MiB})`};
    const stop = () => cap?.stop();
    const young = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space").space_size;
    let largest = 0;
    let kept = [];
    for (let round = 0; round < 400; round++) {
      if (round === ${Number.isFinite(stopAfterTurns) ? stopAfterTurns : -1}) stop();
      for (let i = 0; i < 10_000; i++) {
        kept.push({ round, i, tags: [String(i)] });
        if (kept.length > 60_000) kept = kept.slice(30_000);
      }
      largest = Math.max(largest, young());
      await turn();
    }
    console.log(largest);
  `;
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })) / MiB;
}

/** V8 13 (Node 24) also grows its young generation a page at a time, which the growth factor does not govern. */
const growsByPages = Number(process.versions.v8.split(".")[0]) >= 13;

describe("capYoungGeneration", () => {
  it("stops V8's young generation at the cap (Node 20 and 22), or far below its uncapped size (Node 24)", () => {
    const uncapped = largestYoungGenerationMiB(undefined);
    expect(uncapped).toBeGreaterThanOrEqual(32);
    for (const cap of [4, 8]) {
      if (growsByPages) expect(largestYoungGenerationMiB(cap)).toBeLessThanOrEqual(uncapped / 2);
      else expect(largestYoungGenerationMiB(cap)).toBe(cap);
    }
  });

  it("lets V8 grow it again once stopped", () => {
    expect(largestYoungGenerationMiB(4, 100)).toBeGreaterThanOrEqual(32);
  });
});
