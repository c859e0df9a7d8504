import type { RegistryEvent } from "./event.js";
import type { History } from "./history.js";
import type { InstanceRecord } from "./instance.js";

/** Everything the registry persisted, as loaded at start. */
export interface StoredState {
  readonly revision: number;
  /** The history `revision` counts in: made with the data directory, kept until it is wiped or a follower's is promoted. */
  readonly history: History;
  readonly instances: readonly InstanceRecord[];
  /** The retained event log, in revision order. */
  readonly events: readonly RegistryEvent[];
  /**
   * The data directory is not the one its history was set in: a copy (`cp
   * -r`, a restored file backup) whose revisions may go on apart from the
   * original's. False when the store cannot tell.
   */
  readonly moved: boolean;
}

/**
 * After a failed commit, the state to put back before the next one: a write
 * that failed may still have reached the disk whole (a sync that failed after
 * the bytes were written), so the instances it touched get their committed
 * records again and its events go.
 */
export interface Restore {
  /** The committed records of the instances the failed writes touched. */
  readonly puts: readonly InstanceRecord[];
  /** The instances the failed writes touched that the committed state does not hold. */
  readonly deletes: readonly { readonly service: string; readonly id: string }[];
  /** The failed writes' events are those after `eventsAfter` (the committed revision) through `eventsThrough`. */
  readonly eventsAfter: number;
  readonly eventsThrough: number;
}

/** One atomic, durable write: a group of changes and their events. */
export interface Commit {
  /** The revision after this commit. */
  readonly revision: number;
  readonly puts: readonly InstanceRecord[];
  readonly deletes: readonly { readonly service: string; readonly id: string }[];
  readonly events: readonly RegistryEvent[];
  /** Events at or below this revision may be dropped from the log. */
  readonly dropEventsThrough: number;
  /** Written first, when an earlier commit failed; this commit's own changes then go on top. */
  readonly restore?: Restore | undefined;
  /** A history taken on with this commit: a follower's leader's, or one branched at a promotion or in a copied directory. The store notes the directory it is set in. */
  readonly history?: History | undefined;
}

/**
 * What the registry needs from persistence. `commit` must be atomic and
 * durable (synced) before it resolves: the registry acknowledges writes and
 * publishes events only after it does. After a `commit` that failed, the
 * next one must not lose what it writes to anything the failed one left
 * behind (a torn record in a write-ahead log).
 */
export interface RegistryStore {
  load(): Promise<StoredState>;
  commit(commit: Commit): Promise<void>;
  close(): Promise<void>;
}
