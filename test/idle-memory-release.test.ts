import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { IdleReleasePolicy } from "../src/cli/idle-memory-release.js";
import { grpcClient } from "./support/clients.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";

const MiB = 1024 * 1024;
const quiet = 0.001;
const busy = 0.5;

/** The collections a policy asks for over a run of looks, by look number. */
function collectionsOver(policy: IdleReleasePolicy, looks: ReadonlyArray<readonly [utilization: number, heapMiB: number]>): number[] {
  return looks.flatMap(([utilization, heapMiB], look) => (policy.next({ utilization, heapBytes: heapMiB * MiB }) ? [look] : []));
}

describe("IdleReleasePolicy", () => {
  it("collects once the process has been quiet long enough after its heap grew, and again while that frees memory", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 3, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = [
      [busy, 90], // a burst
      [quiet, 90],
      [quiet, 90],
      [quiet, 90], // third quiet look: collect
      [quiet, 60], // freed 30 MiB: collect again
      [quiet, 40], // freed 20: again
      [quiet, 38], // freed 2: done
      [quiet, 38],
      [quiet, 38],
      [quiet, 38],
    ] as const;
    expect(collectionsOver(policy, looks)).toEqual([3, 4, 5]);
  });

  it("never collects under a steady load, however large the heap", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 3, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = Array.from({ length: 50 }, (_, look) => [look % 7 === 6 ? quiet : 0.05, 150] as const);
    expect(collectionsOver(policy, looks)).toEqual([]);
  });

  it("stops a release at a busy look, and starts again only after enough quiet", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 2, initialHeapBytes: 20 * MiB, thorough: false });
    const looks = [
      [quiet, 90],
      [quiet, 90], // collect
      [busy, 70], // load is back: stop, though the collection freed 20 MiB
      [quiet, 70],
      [quiet, 70], // quiet for two looks again, but 70 MiB is no growth past the smallest size since the release began
      [quiet, 70],
    ] as const;
    expect(collectionsOver(policy, looks)).toEqual([1]);
  });

  it("makes a release one collection when collections are thorough", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 2, initialHeapBytes: 20 * MiB, thorough: true });
    const looks = [
      [quiet, 90],
      [quiet, 90], // collect
      [quiet, 40], // freed 50, but a thorough collection left nothing for another
      [quiet, 40],
    ] as const;
    expect(collectionsOver(policy, looks)).toEqual([1]);
  });

  it("measures the next release from where the last one ended, not from the empty start", () => {
    const policy = new IdleReleasePolicy({ quietLooks: 1, initialHeapBytes: 10 * MiB, thorough: false });
    const looks = [
      [quiet, 80], // collect
      [quiet, 40], // freed 40: collect
      [quiet, 39], // freed 1: the release ends at 39 MiB
      [quiet, 39],
      [quiet, 46], // 7 MiB more than 39: not yet
      [quiet, 48], // 9 more: collect
      [quiet, 47], // freed 1: done
      [quiet, 47],
    ] as const;
    expect(collectionsOver(policy, looks)).toEqual([0, 1, 5]);
  });
});

describe("a served registry after a burst", () => {
  it("hands the burst's memory back once quiet, and keeps every instance", async () => {
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_LOG_LEVEL: "debug" });
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
