import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { currentHeapBytes, releaseMemoryWhenIdle } from "../src/cli/idle-memory-release.js";
import { IdleReleasePolicy, type IdleAction } from "../src/cli/idle-release-policy.js";
import { grpcClient } from "./support/clients.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";

const MiB = 1024 * 1024;
const quiet = 0.001;
const busy = 0.5;

/** The looks at which a policy asks for something, and what. */
function actionsOver(policy: IdleReleasePolicy, looks: ReadonlyArray<readonly [utilization: number, heapMiB: number]>): Array<[number, IdleAction]> {
  return looks.flatMap(([utilization, heapMiB], look): Array<[number, IdleAction]> => {
    const action = policy.next({ utilization, heapBytes: heapMiB * MiB });
    return action === undefined ? [] : [[look, action]];
  });
}

describe("IdleReleasePolicy", () => {
  it("prepares at the first quiet look after the heap grew, collects once quiet long enough since, and again while that frees memory", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 3, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = [
      [busy, 90], // a burst
      [quiet, 90], // prepare
      [quiet, 90],
      [quiet, 90],
      [quiet, 90], // the third quiet look since: collect
      [quiet, 60], // freed 30 MiB: collect again
      [quiet, 40], // freed 20: again
      [quiet, 38], // freed 2: done
      [quiet, 38],
      [quiet, 38],
      [quiet, 38],
    ] as const;
    expect(actionsOver(policy, looks)).toEqual([
      [1, "prepare"],
      [4, "collect"],
      [5, "collect"],
      [6, "collect"],
    ]);
  });

  it("collects a second time even when the first freed little: on Node 20 the second frees what the first marked", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 1, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = [
      [quiet, 65], // prepare
      [quiet, 65], // collect
      [quiet, 62], // freed 3 MiB: collect again all the same
      [quiet, 17], // freed 45: again
      [quiet, 16], // freed 1: done
      [quiet, 16],
    ] as const;
    expect(actionsOver(policy, looks)).toEqual([
      [0, "prepare"],
      [1, "collect"],
      [2, "collect"],
      [3, "collect"],
    ]);
  });

  it("never collects under a steady load, however large the heap", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 3, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = Array.from({ length: 50 }, (_, look) => [look % 4 === 3 ? quiet : 0.05, 150] as const);
    // A quiet look now and then prepares, but the load is back before the release.
    expect(actionsOver(policy, looks).filter(([, action]) => action === "collect")).toEqual([]);
  });

  it("stops a release at a busy look, and prepares again after it", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 2, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = [
      [quiet, 90], // prepare
      [quiet, 90],
      [quiet, 90], // collect
      [busy, 70], // load is back: the release stops, though the collection freed 20 MiB
      [quiet, 70], // 70 MiB is no growth past where the release began to shrink the heap
      [quiet, 70],
      [quiet, 70],
      [busy, 90], // another burst
      [quiet, 90], // prepare
      [busy, 90], // interrupted
      [quiet, 90], // prepare again
      [quiet, 90],
      [quiet, 90], // collect
    ] as const;
    expect(actionsOver(policy, looks)).toEqual([
      [0, "prepare"],
      [2, "collect"],
      [8, "prepare"],
      [10, "prepare"],
      [12, "collect"],
    ]);
  });

  it("makes a release one unprepared collection when collections are thorough", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 2, initialHeapBytes: 20 * MiB, thorough: true });
    const looks = [
      [quiet, 90],
      [quiet, 90], // collect
      [quiet, 40], // freed 50, but a thorough collection left nothing for another
      [quiet, 40],
    ] as const;
    expect(actionsOver(policy, looks)).toEqual([[1, "collect"]]);
  });

  it("measures the next release from where the last one ended, not from the empty start", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 1, initialHeapBytes: 10 * MiB, thorough: true });
    const looks = [
      [quiet, 80], // collect
      [quiet, 39], // the release ends at 39 MiB
      [quiet, 39],
      [quiet, 46], // 7 MiB more than 39: not yet
      [quiet, 48], // 9 more: collect
      [quiet, 47],
    ] as const;
    expect(actionsOver(policy, looks)).toEqual([
      [0, "collect"],
      [4, "collect"],
    ]);
  });
});

describe("releaseMemoryWhenIdle", () => {
  it("releases a burst that ended before its first look, as agents re-registering after a restart can", async () => {
    const lines: string[] = [];
    const stop = releaseMemoryWhenIdle(1_000, pino({ level: "debug" }, { write: (line: string) => lines.push(line) }));
    try {
      // About 30 MB held long enough to reach the old generation, then dropped, all before the first look a second from now.
      let burst: { n: number; name: string }[] | undefined = Array.from({ length: 300_000 }, (_, n) => ({ n, name: `instance-${n}` }));
      await new Promise((resolve) => setImmediate(resolve));
      expect(burst.length).toBe(300_000);
      burst = undefined;
      await vi.waitFor(() => expect(lines.some((line) => line.includes("quiet: collected garbage"))).toBe(true), { timeout: 15_000, interval: 250 });
    } finally {
      stop();
    }
  }, 20_000);
});

describe("releaseMemoryWhenIdle, started after the burst", () => {
  it("counts the heap's growth from the size it is given, as serve does when it starts tuning at its first answer", async () => {
    const lines: string[] = [];
    const before = currentHeapBytes();
    let burst: { n: number; name: string }[] | undefined = Array.from({ length: 300_000 }, (_, n) => ({ n, name: `instance-${n}` }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(burst.length).toBe(300_000);
    burst = undefined;
    const stop = releaseMemoryWhenIdle(1_000, pino({ level: "debug" }, { write: (line: string) => lines.push(line) }), before);
    try {
      await vi.waitFor(() => expect(lines.some((line) => line.includes("quiet: collected garbage"))).toBe(true), { timeout: 15_000, interval: 250 });
    } finally {
      stop();
    }
  }, 20_000);
});

describe("a served registry after a burst", () => {
  it("hands the burst's memory back once quiet, and keeps every instance", async () => {
    // The heap left to V8's own sizing, as after a saturating load: on Node 20 a light load like this burst no longer grows it enough to need a release.
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_LOG_LEVEL: "debug", MUSTER_YOUNG_GENERATION_MIB: "0" });
    try {
      const client = grpcClient(await server.ready());
      for (let start = 0; start < 6_000; start += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, i) => {
            const n = start + i;
            return client.register({ instance: { service: `svc-${n % 60}`, id: `i${n}`, address: `10.0.${n >> 8}.${n & 255}:8080`, labels: { tier: "web" }, ttl: durationFromMs(3_600_000) } });
          }),
        );
      }
      const residentMiB = async () => Number((await client.status({})).residentBytes) / 1024 / 1024;
      const afterBurst = await residentMiB();
      // Five quiet seconds (the default), then the collections.
      await server.line((line) => line.includes("quiet: collected garbage"), 20_000);
      let settled = afterBurst;
      for (let waited = 0; waited < 10_000 && settled > afterBurst * 0.8; waited += 500) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        settled = await residentMiB();
      }
      expect(settled, `resident ${afterBurst.toFixed(0)} MiB after the burst, ${settled.toFixed(0)} MiB once quiet`).toBeLessThan(afterBurst * 0.8);
      const status = await client.status({});
      expect(status.instances).toBe(6_000);
    } finally {
      await server.kill("SIGKILL");
    }
  }, 60_000);
});
