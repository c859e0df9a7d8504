import { randomBytes } from "node:crypto";

/**
 * Which history a registry's revisions count in. Revision N names one
 * change only within one history: a data directory wiped or restored from
 * a backup counts other changes under the same numbers, and so does a
 * follower made a registry of its own once it takes writes its old leader
 * never saw. Watchers name the history of the revision they resume from,
 * and a registry that cannot vouch for it answers with a snapshot.
 */
export interface History {
  /** 64 random bits, in hex: what WatchResponse.history carries. */
  readonly id: string;
  /** Taken from a leader with its snapshot: this registry follows (or followed) that leader. */
  readonly copied: boolean;
  /** A promoted follower's leader's history, and the last revision the two share. */
  readonly forkedFrom?: { readonly id: string; readonly revision: number } | undefined;
}

/** A history of its own, for a new data directory. */
export function newHistory(): History {
  return { id: randomBytes(8).toString("hex"), copied: false };
}

/**
 * The history a follower's registry takes on when it is opened to take
 * writes of its own at `revision`: a new one, branched from its leader's
 * there, so a watcher of the old leader at or below `revision` resumes
 * without a snapshot, and one above it (changes the follower never copied)
 * gets one.
 */
export function promotedHistory(copied: History, revision: number): History {
  return { ...newHistory(), forkedFrom: { id: copied.id, revision } };
}

/** Whether changes after `revision` of history `id` are, in `history`, the changes that followed it. */
export function continuesHistory(history: History, id: string, revision: number): boolean {
  return id === history.id || (id === history.forkedFrom?.id && revision <= history.forkedFrom.revision);
}
