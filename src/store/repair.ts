import { readdir } from "node:fs/promises";
import { ClassicLevel } from "classic-level";
import { Level } from "level";
import type { RegistryEvent } from "../domain/event.js";
import type { InstanceRecord } from "../domain/instance.js";
import { eventKey, eventPrefix, instancePrefix, revisionKey } from "./layout.js";
import { explainOpenError, StoreError } from "./store-error.js";

/** What `repairDataDirectory` kept and dropped. */
export interface RepairReport {
  readonly instances: number;
  readonly events: number;
  /** Entries that could not be read, and events cut to keep the log gap-free. */
  readonly dropped: number;
  readonly revision: number;
}

/**
 * Repairs a damaged data directory: LevelDB's own repair salvages what its
 * files still hold, then muster's invariants are restored. Unreadable
 * entries go, the revision becomes the newest change that survived, and the
 * event log keeps only a gap-free run ending at that revision (watchers
 * resuming from older revisions get a snapshot). Acknowledged writes in
 * damaged blocks are lost; the report says how much survived.
 */
export async function repairDataDirectory(directory: string): Promise<RepairReport> {
  await expectLevelFiles(directory);
  await expectNotInUse(directory);
  await ClassicLevel.repair(directory);
  const db = new Level(directory, { keyEncoding: "utf8", valueEncoding: "utf8" });
  try {
    await db.open();
  } catch (error) {
    throw explainOpenError(directory, error);
  }
  try {
    const unreadable: string[] = [];
    const instances: InstanceRecord[] = [];
    const events: RegistryEvent[] = [];
    let storedRevision = 0;
    for await (const [key, value] of db.iterator()) {
      try {
        if (key === revisionKey) storedRevision = Number(value) || 0;
        else if (key.startsWith(instancePrefix)) instances.push(JSON.parse(value) as InstanceRecord);
        else if (key.startsWith(eventPrefix)) events.push(JSON.parse(value) as RegistryEvent);
        else unreadable.push(key);
      } catch {
        unreadable.push(key);
      }
    }
    const revision = Math.max(storedRevision, ...instances.map((instance) => instance.revision), ...events.map((event) => event.revision));
    const kept = gapFreeTail(events, revision);
    const cut = events.filter((event) => !kept.includes(event));
    await db.batch(
      [
        ...unreadable.map((key) => ({ type: "del" as const, key })),
        ...cut.map((event) => ({ type: "del" as const, key: eventKey(event.revision) })),
        { type: "put" as const, key: revisionKey, value: String(revision) },
      ],
      { sync: true },
    );
    return { instances: instances.length, events: kept.length, dropped: unreadable.length + cut.length, revision };
  } finally {
    await db.close();
  }
}

/**
 * LevelDB's repair creates what it does not find, so a mistyped path would
 * be "repaired" into an empty registry. Any of LevelDB's own files is
 * enough to go on: repair rebuilds the rest from them.
 */
async function expectLevelFiles(directory: string): Promise<void> {
  const names = await readdir(directory).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new StoreError("missing", `data directory ${directory} is not a directory; there is nothing to repair`);
    if (code !== "ENOENT") throw error;
    throw new StoreError("missing", `data directory ${directory} does not exist; there is nothing to repair`);
  });
  if (!names.some((name) => /^(CURRENT|MANIFEST-\d+|\d+\.(ldb|log|sst))$/.test(name))) {
    throw new StoreError("missing", `data directory ${directory} holds no muster data; there is nothing to repair`);
  }
}

/**
 * LevelDB's repair takes no lock: run on the directory of a serving registry,
 * it moves the live log aside and rewrites the MANIFEST under it, and every
 * write acknowledged after that is gone at the next start. So it runs only
 * where an open can take the lock (a damaged directory may fail to open for
 * other reasons, which is what repair is for). A registry started in the
 * moment between this check and the repair is not caught.
 */
async function expectNotInUse(directory: string): Promise<void> {
  const db = new Level(directory, { createIfMissing: false });
  try {
    await db.open();
  } catch (error) {
    const explained = explainOpenError(directory, error);
    if (explained.code === "locked") throw explained;
    return;
  }
  await db.close();
}

/** The longest run of consecutive revisions that ends at `revision`; empty if the newest is missing. */
function gapFreeTail(events: readonly RegistryEvent[], revision: number): RegistryEvent[] {
  const sorted = [...events].sort((a, b) => a.revision - b.revision);
  const tail: RegistryEvent[] = [];
  for (let index = sorted.length - 1, expected = revision; index >= 0; index--, expected--) {
    const event = sorted[index];
    if (event?.revision !== expected) break;
    tail.unshift(event);
  }
  return tail;
}
