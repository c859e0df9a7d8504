import type { RegistryEvent } from "./event.js";
import type { InstanceRecord } from "./instance.js";

/** Everything the registry persisted, as loaded at start. */
export interface StoredState {
  readonly revision: number;
  readonly instances: readonly InstanceRecord[];
  /** The retained event log, in revision order. */
  readonly events: readonly RegistryEvent[];
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
}

/**
 * What the registry needs from persistence. `commit` must be atomic and
 * durable (synced) before it resolves: the registry acknowledges writes and
 * publishes events only after it does.
 */
export interface RegistryStore {
  load(): Promise<StoredState>;
  commit(commit: Commit): Promise<void>;
  close(): Promise<void>;
}
