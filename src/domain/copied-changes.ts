import { removesInstance, type EventType } from "./event.js";
import { instanceKey, type InstanceRecord } from "./instance.js";
import { RegistryError } from "./registry-error.js";
import type { Transaction } from "./transaction.js";

/** One change as a leader made it, for a follower to make the same. */
export interface CopiedChange {
  readonly type: EventType;
  /** The instance after the change; for deregistered and expired, as it was. */
  readonly instance: InstanceRecord;
  /** The leader's revision for it: a follower's revisions are its leader's. */
  readonly revision: number;
  /** When the leader made it, wall-clock milliseconds. */
  readonly time: number;
}

/**
 * Makes a leader's changes in `tx`, each at the leader's revision and
 * time, so that a watcher may resume on either side with the same
 * `since_revision`. Changes at or below the follower's revision were copied
 * already and are skipped. Everything is checked before anything is made:
 * a change that does not follow the last one, or the removal of an instance
 * the follower does not hold, means a change went missing, and the group is
 * refused whole (the follower then starts over from a snapshot).
 */
export function makeCopiedChanges(tx: Transaction, changes: readonly CopiedChange[]): number {
  const fresh = changes.filter((change) => change.revision > tx.lastRevision);
  const present = new Map<string, boolean>();
  let expected = tx.lastRevision + 1;
  for (const change of fresh) {
    if (change.revision !== expected) throw missingChange(`the leader's change ${change.revision} came after revision ${expected - 1}`);
    expected++;
    const { service, id } = change.instance;
    const key = instanceKey(service, id);
    const held = present.get(key) ?? tx.get(service, id) !== undefined;
    const removal = removesInstance(change.type);
    if (removal && !held) throw missingChange(`the leader removed ${key} at revision ${change.revision}, which this follower does not hold`);
    present.set(key, !removal);
  }
  for (const change of fresh) {
    const current = tx.get(change.instance.service, change.instance.id);
    if (removesInstance(change.type)) {
      if (current !== undefined) tx.remove(change.type, current, change.time);
    } else tx.put(change.type, change.instance, current, change.time);
  }
  return tx.lastRevision;
}

function missingChange(what: string): RegistryError {
  return new RegistryError("failed-precondition", `${what}: a change is missing, so this follower starts over from a snapshot`);
}
