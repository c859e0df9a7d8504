import { randomBytes } from "node:crypto";

/** A history this one branched from, and the last revision the two share. */
export interface Fork {
  readonly id: string;
  readonly revision: number;
}

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
  /** Taken from a leader: this registry follows (or followed) that leader. */
  readonly copied: boolean;
  /**
   * The histories this one branched from, newest first, so a watcher of
   * any of them resumes here without a snapshot (a follower promoted twice,
   * or a follower of a promoted one). At most `maxAncestors`.
   */
  readonly ancestors: readonly Fork[];
}

/** How many ancestors a history keeps: a watcher older than that many promotions gets a snapshot. */
export const maxAncestors = 16;

/** A history of its own, for a new data directory. */
export function newHistory(): History {
  return { id: randomId(), copied: false, ancestors: [] };
}

/**
 * The history a registry takes on when its revisions after `revision` may
 * count other changes than `from`'s: a follower opened to take writes of
 * its own, or a copy of a data directory opened beside the original. A new
 * one, branched from `from` there, so a watcher of the old one at or below
 * `revision` resumes without a snapshot, and one above it (changes this
 * registry never had) gets one.
 */
export function branchedHistory(from: History, revision: number): History {
  return { id: randomId(), copied: false, ancestors: branch(from, revision) };
}

/**
 * The history a follower takes on when its leader, resumed from the
 * follower's `revision`, names another (the leader was promoted since):
 * the leader's, branched from the follower's old one there, since the
 * leader vouched that the two agree up to it.
 */
export function leadersHistory(own: History, leaderId: string, revision: number): History {
  return { id: leaderId, copied: true, ancestors: branch(own, revision) };
}

/** Whether changes after `revision` of history `id` are, in `history`, the changes that followed it. */
export function continuesHistory(history: History, id: string, revision: number): boolean {
  if (id === history.id) return true;
  // Each step back shares only up to its fork, and no more than the steps after it share.
  let shared = Number.POSITIVE_INFINITY;
  for (const fork of history.ancestors) {
    shared = Math.min(shared, fork.revision);
    if (fork.id === id) return revision <= shared;
  }
  return false;
}

function branch(from: History, revision: number): Fork[] {
  return [{ id: from.id, revision }, ...from.ancestors].slice(0, maxAncestors);
}

function randomId(): string {
  return randomBytes(8).toString("hex");
}
