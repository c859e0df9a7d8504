import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { grpcClient, type RegistryClient } from "./support/clients.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";

/** What a key should look like: absent, or present with a version. */
type KeyState = { present: false } | { present: true; version: string };

interface KeyRecord {
  acknowledged: KeyState;
  /** The write under way when the registry died: it may or may not have landed, but whole. */
  inFlight: KeyState | undefined;
}

const rounds = 4;
const workers = 8;
const keysPerWorker = 6;
const ttl = durationFromMs(3_600_000);

/** Sequential random writes to one worker's own keys until the registry dies under it. */
async function writeUntilKilled(client: RegistryClient, worker: number, keys: Map<string, KeyRecord>, counter: { writes: number; seq: number }): Promise<void> {
  for (;;) {
    const id = `w${worker}-k${Math.floor(Math.random() * keysPerWorker)}`;
    const record = keys.get(id) ?? { acknowledged: { present: false }, inFlight: undefined };
    keys.set(id, record);
    const deregister = record.acknowledged.present && Math.random() < 0.4;
    const next: KeyState = deregister ? { present: false } : { present: true, version: `1.0.${counter.seq++}` };
    record.inFlight = next;
    try {
      if (next.present) await client.register({ instance: { service: "load", id, address: "10.0.0.1:80", version: next.version, ttl } });
      else await client.deregister({ service: "load", id });
    } catch {
      return;
    }
    record.acknowledged = next;
    record.inFlight = undefined;
    counter.writes++;
  }
}

describe("crash safety under load", () => {
  it("keeps every acknowledged write, half-applies nothing, and keeps history gap-free through repeated SIGKILLs", async () => {
    const dataDir = await tempDataDir();
    const keys = new Map<string, KeyRecord>();
    const counter = { writes: 0, seq: 0 };
    const watched: bigint[] = [];
    let highestAcknowledged = 0n;

    for (let round = 0; round < rounds; round++) {
      const server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
      const client = grpcClient(await server.ready());

      const found = await client.discover({ service: "load", includeUnhealthy: true });
      expect(found.revision).toBeGreaterThanOrEqual(highestAcknowledged);
      const present = new Map(found.instances.map((instance) => [instance.id, instance.version]));
      for (const [id, { acknowledged, inFlight }] of keys) {
        const actual: KeyState = present.has(id) ? { present: true, version: present.get(id) ?? "" } : { present: false };
        const allowed = [acknowledged, ...(inFlight === undefined ? [] : [inFlight])];
        expect(allowed, `${id} after kill ${round}`).toContainEqual(actual);
        keys.set(id, { acknowledged: actual, inFlight: undefined });
      }
      highestAcknowledged = found.revision;

      const abort = new AbortController();
      const since = watched.at(-1) ?? 0n;
      let snapshots = 0;
      const watching = (async () => {
        for await (const message of client.watch({ includeUnhealthy: true, sinceRevision: since }, { signal: abort.signal })) {
          if (message.snapshot) snapshots++;
          else watched.push(...message.events.map((event) => event.revision));
        }
      })().catch(() => undefined);

      const writing = Array.from({ length: workers }, (_, worker) => writeUntilKilled(client, worker, keys, counter));
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
      await server.kill("SIGKILL");
      await Promise.all(writing);
      abort.abort();
      await watching;
      expect(snapshots, `round ${round} resumed from ${since}`).toBe(since === 0n ? 1 : 0);
    }

    const last = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    try {
      const found = await grpcClient(await last.ready()).discover({ includeUnhealthy: true });
      expect(found.revision).toBeGreaterThanOrEqual(BigInt(watched.length));
      expect(watched).toEqual(Array.from({ length: watched.length }, (_, i) => BigInt(i + 1)));
      console.log(`crash test: ${counter.writes} acknowledged writes, ${rounds} SIGKILLs, ${watched.length} events watched gap-free, final revision ${found.revision}`);
      expect(counter.writes).toBeGreaterThan(rounds * workers);
    } finally {
      await last.kill("SIGKILL");
    }
  });
});
