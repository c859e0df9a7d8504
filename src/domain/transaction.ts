import type { EventType, RegistryEvent } from "./event.js";
import type { History } from "./history.js";
import { instanceKey, updateRecord, type InstanceRecord } from "./instance.js";
import type { InstanceIndex } from "./instance-index.js";
import type { Commit, Restore } from "./registry-store.js";

interface Change {
  readonly service: string;
  readonly id: string;
  readonly instance: InstanceRecord | null;
}

/**
 * The changes of one group commit. Mutations run one after another against
 * the committed state plus the changes earlier in the same group, each
 * taking the next revision, so a group is exactly a sequence of writes.
 */
export class Transaction {
  readonly events: RegistryEvent[] = [];
  /** The history this group's revisions count in, when it takes on another (`replaceAll`, `takeHistory`). */
  private takenHistory: History | undefined;
  /** Set by `replaceAll`: this group replaces the whole state, and the event log starts over after it. */
  private replacing = false;
  /** By instance key; `instance` is null for a removal. */
  private readonly changes = new Map<string, Change>();

  constructor(
    private readonly committed: InstanceIndex,
    private revision: number,
    /** Wall-clock time stamped on this group's records and events. */
    readonly time: number,
  ) {}

  get(service: string, id: string): InstanceRecord | undefined {
    const change = this.changes.get(instanceKey(service, id));
    return change === undefined ? this.committed.get(service, id) : (change.instance ?? undefined);
  }

  /** The revision of the last change in this group so far. */
  get lastRevision(): number {
    return this.revision;
  }

  /** True when this group replaces the whole state (`replaceAll`). */
  get isReplacement(): boolean {
    return this.replacing;
  }

  /** The history this group takes on; undefined when it stays in the registry's. */
  get history(): History | undefined {
    return this.takenHistory;
  }

  /**
   * Stores `instance` (stamped with the next revision) and records its event,
   * at the group's time unless `time` is given (a change copied from a leader
   * keeps the leader's).
   */
  put(type: EventType, instance: InstanceRecord, previous: InstanceRecord | undefined, time = this.time): InstanceRecord {
    const revision = ++this.revision;
    const stored = updateRecord(instance, { revision });
    this.changes.set(instanceKey(stored.service, stored.id), { service: stored.service, id: stored.id, instance: stored });
    this.events.push({ type, instance: stored, previous, revision, time });
    return stored;
  }

  /** Removes `instance` and records its event; returns the revision. */
  remove(type: "deregistered" | "expired", instance: InstanceRecord, time = this.time): number {
    const revision = ++this.revision;
    this.changes.set(instanceKey(instance.service, instance.id), { service: instance.service, id: instance.id, instance: null });
    this.events.push({ type, instance, previous: instance, revision, time });
    return revision;
  }

  /**
   * Replaces every instance with `instances`, as they are, at `revision` of
   * `history`, with no events: what a follower does with its leader's
   * snapshot. The changes before `revision` are unknown here, so the event
   * log is dropped whole and starts again after it. Only alone in its group.
   */
  replaceAll(instances: readonly InstanceRecord[], revision: number, historyId: string): void {
    if (this.events.length > 0 || this.changes.size > 0) throw new Error("replaceAll must be the only change of its group");
    for (const instance of this.committed.scan(undefined)) this.changes.set(instanceKey(instance.service, instance.id), { service: instance.service, id: instance.id, instance: null });
    for (const instance of instances) this.changes.set(instanceKey(instance.service, instance.id), { service: instance.service, id: instance.id, instance });
    this.revision = revision;
    this.replacing = true;
    this.takenHistory = { id: historyId, copied: true, ancestors: [] };
  }

  /** Makes `history` the one this group's revisions, and those after it, count in. */
  takeHistory(history: History): void {
    this.takenHistory = history;
  }

  /** The keys this group changes. */
  touchedKeys(): ReadonlySet<string> {
    return new Set(this.changes.keys());
  }

  /** The durable form of this group; `historyLimit` events are kept, and `restore` is written first. */
  toCommit(historyLimit: number, restore?: Restore): Commit {
    const puts: InstanceRecord[] = [];
    const deletes: { service: string; id: string }[] = [];
    for (const { service, id, instance } of this.changes.values()) {
      if (instance === null) deletes.push({ service, id });
      else puts.push(instance);
    }
    return { revision: this.revision, puts, deletes, events: this.events, dropEventsThrough: this.isReplacement ? this.revision : this.revision - historyLimit, restore, history: this.takenHistory };
  }

  /** Makes the group's changes visible in the committed index. */
  applyTo(index: InstanceIndex): void {
    for (const { service, id, instance } of this.changes.values()) {
      if (instance === null) index.delete(service, id);
      else index.set(instance);
    }
  }
}
