import { stat } from "node:fs/promises";
import { Level } from "level";
import type { RegistryEvent } from "../domain/event.js";
import { newHistory, type Fork, type History } from "../domain/history.js";
import type { InstanceRecord } from "../domain/instance.js";
import type { Commit, RegistryStore, StoredState } from "../domain/registry-store.js";
import { eventKey, eventPrefix, historyKey, instanceKeyOf, instancePrefix, placeKey, rangeOf, revisionKey } from "./layout.js";
import { corruptValue, explainOpenError, explainReadError, recovery, StoreError } from "./store-error.js";
import { makeDataDirectory } from "./data-directory.js";

/**
 * Entries a load reads per call into LevelDB: one promise each, not one per
 * entry (100,000 instances load about 65 ms sooner).
 */
const entriesPerRead = 1000;
/**
 * Bytes per entry a read may hold. classic-level stops filling a call at
 * 16 KiB by default, about 50 records, so 100,000 instances took 1,956
 * calls, not 100. A record is about 300 bytes and an event up to about 700,
 * so 1 KiB each lets a call take all 1,000: reading and parsing 100,000
 * records 514 -> 271 ms (BENCHMARKS.md, "Start-up").
 */
const bytesPerEntryRead = 1024;

/**
 * The registry's state in an embedded LevelDB. Every commit is one atomic
 * batch written with `sync`, so an acknowledged write survives a crash of
 * the process or the machine.
 */
export class LevelStore implements RegistryStore {
  /** The oldest event revision still on disk; older ones are compacted away. */
  private oldestEvent = 1;
  /** The revision of the last commit written (or loaded): no event key above it exists. */
  private storedRevision = 0;
  /**
   * Set when a write failed. LevelDB goes on appending to a write-ahead log
   * that may now end in a torn record, and at the next open it drops the
   * rest of that log block with the tear: writes acknowledged after a full
   * disk was freed were lost that way. Reopening first starts a new log.
   */
  private reopenBeforeWriting = false;
  /** The directory's identity (see `place`), read once at load: a history committed later is noted as set here. */
  private here: string | undefined;

  private constructor(
    private readonly db: Level,
    /** The data directory, for messages. */
    readonly directory: string,
  ) {}

  /**
   * Opens (creating if needed) the data directory. Fails with a StoreError
   * coded `locked` when another process holds it, `corrupt` when LevelDB
   * finds damage.
   */
  static async open(directory: string): Promise<LevelStore> {
    const db = new Level(directory, { keyEncoding: "utf8", valueEncoding: "utf8" });
    try {
      await makeDataDirectory(directory);
      await db.open();
    } catch (error) {
      throw explainOpenError(directory, error);
    }
    return new LevelStore(db, directory);
  }

  async load(): Promise<StoredState> {
    // level's typings promise a string, but abstract-level 3 answers undefined for a missing key.
    const storedRevision = (await this.db.get(revisionKey)) as string | undefined;
    const revision = storedRevision === undefined ? 0 : Number(storedRevision);
    if (!Number.isSafeInteger(revision) || revision < 0) {
      throw corruptValue(this.directory, revisionKey, new Error(`not a revision: ${storedRevision}`));
    }
    const instances = await this.readRange<InstanceRecord>(instancePrefix);
    const events = await this.readRange<RegistryEvent>(eventPrefix);
    const newest = events.at(-1)?.revision ?? revision;
    const gap = events.findIndex((event, index) => index > 0 && event.revision !== (events[index - 1]?.revision ?? 0) + 1);
    if (newest !== revision || gap !== -1 || instances.some((instance) => instance.revision > revision)) {
      throw new StoreError(
        "corrupt",
        `data directory ${this.directory} is inconsistent (it records revision ${revision}; its changes and event log do not agree with that); ${recovery(this.directory)}`,
      );
    }
    this.oldestEvent = events[0]?.revision ?? revision + 1;
    this.storedRevision = revision;
    return { revision, instances, events, ...(await this.loadHistory()) };
  }

  /**
   * The data directory's history, made (and synced) at its first open, and
   * whether this directory is another than the one it was set in: a copy
   * keeps every file but not the directory's inode or birth time. A
   * directory from before places were kept counts as where it always was.
   */
  private async loadHistory(): Promise<{ history: History; moved: boolean }> {
    // level's typings promise strings, but abstract-level 3 answers undefined for a missing key.
    const [stored, storedPlace, here] = (await Promise.all([this.db.get(historyKey), this.db.get(placeKey), this.place()])) as [string | undefined, string | undefined, string];
    this.here = here;
    if (stored === undefined) {
      const history = newHistory();
      await this.db.batch([{ type: "put", key: historyKey, value: JSON.stringify(history) }, { type: "put", key: placeKey, value: here }], { sync: true });
      return { history, moved: false };
    }
    let history: History;
    try {
      history = historyFromJson(stored);
    } catch (error) {
      throw corruptValue(this.directory, historyKey, error);
    }
    if (storedPlace === undefined) await this.db.put(placeKey, here, { sync: true });
    return { history, moved: storedPlace !== undefined && storedPlace !== here };
  }

  /** The directory's identity: its inode, and its birth time where the file system keeps one (Linux reports the change time otherwise, which moves). */
  private async place(): Promise<string> {
    const { ino, birthtimeMs, ctimeMs } = await stat(this.directory);
    return JSON.stringify({ inode: ino, born: birthtimeMs === ctimeMs ? 0 : birthtimeMs });
  }

  async commit(commit: Commit): Promise<void> {
    if (this.reopenBeforeWriting) {
      await this.db.close();
      try {
        await this.db.open();
      } catch (error) {
        throw explainOpenError(this.directory, error);
      }
      this.reopenBeforeWriting = false;
    }
    // A chained batch hands each operation straight to LevelDB's WriteBatch;
    // an array batch copies and re-validates every operation object first,
    // about ten times the cost per operation (BENCHMARKS.md, Register).
    const batch = this.db.batch();
    let oldest = this.oldestEvent;
    try {
      // What failed commits may have left goes back first; this commit's own changes follow and win.
      if (commit.restore !== undefined) {
        writeInstances(batch, commit.restore);
        for (let revision = commit.restore.eventsAfter + 1; revision <= commit.restore.eventsThrough; revision++) batch.del(eventKey(revision));
      }
      writeInstances(batch, commit);
      for (const event of commit.events) batch.put(eventKey(event.revision), JSON.stringify(event));
      // Only keys that may exist: a follower taking a snapshot drops a log that ends far below the new revision.
      const newestEvent = commit.events.at(-1)?.revision ?? this.storedRevision;
      for (; oldest <= Math.min(commit.dropEventsThrough, newestEvent); oldest++) batch.del(eventKey(oldest));
      oldest = Math.max(oldest, commit.dropEventsThrough + 1);
      batch.put(revisionKey, String(commit.revision));
      if (commit.history !== undefined) {
        batch.put(historyKey, JSON.stringify(commit.history));
        batch.put(placeKey, this.here ?? (await this.place()));
      }
    } catch (error) {
      await batch.close();
      throw error;
    }
    try {
      await batch.write({ sync: true });
    } catch (error) {
      this.reopenBeforeWriting = true;
      throw error;
    }
    this.oldestEvent = oldest;
    this.storedRevision = commit.revision;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private async readRange<T>(prefix: string): Promise<T[]> {
    const values: T[] = [];
    const iterator = this.db.iterator({ ...rangeOf(prefix), highWaterMarkBytes: entriesPerRead * bytesPerEntryRead });
    try {
      for (let entries = await iterator.nextv(entriesPerRead); entries.length > 0; entries = await iterator.nextv(entriesPerRead)) {
        for (const [key, value] of entries) {
          try {
            values.push(JSON.parse(value) as T);
          } catch (error) {
            throw corruptValue(this.directory, key, error);
          }
        }
      }
    } catch (error) {
      throw explainReadError(this.directory, error);
    } finally {
      await iterator.close();
    }
    return values;
  }
}

/** Adds the instance records `changes` puts and deletes to a batch. */
function writeInstances(batch: { put(key: string, value: string): unknown; del(key: string): unknown }, changes: Pick<Commit, "puts" | "deletes">): void {
  for (const instance of changes.puts) batch.put(instanceKeyOf(instance.service, instance.id), JSON.stringify(instance));
  for (const { service, id } of changes.deletes) batch.del(instanceKeyOf(service, id));
}

/** A stored history; one written before histories kept several ancestors has at most one, as `forkedFrom`. */
function historyFromJson(json: string): History {
  const stored = JSON.parse(json) as { id?: unknown; copied?: unknown; ancestors?: unknown; forkedFrom?: unknown } | null;
  if (typeof stored?.id !== "string") throw new Error(`not a history: ${json}`);
  const ancestors: unknown[] = Array.isArray(stored.ancestors) ? stored.ancestors : stored.forkedFrom === undefined ? [] : [stored.forkedFrom];
  if (!ancestors.every(isFork)) throw new Error(`not a history: ${json}`);
  return { id: stored.id, copied: stored.copied === true, ancestors };
}

function isFork(value: unknown): value is Fork {
  const fork = value as Partial<Fork> | null;
  return typeof fork?.id === "string" && Number.isSafeInteger(fork.revision);
}
