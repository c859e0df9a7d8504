import type { Clock } from "./clock.js";
import type { EventType } from "./event.js";
import type { ExpiryGuardPolicy, ExpiryHoldState } from "./expiry-guard.js";
import type { Health, InstanceRecord } from "./instance.js";
import type { LivenessPolicy } from "./instance-spec.js";
import type { WatchLimits } from "./watch-stream.js";
import type { AnswerCacheLimits } from "./answer-cache.js";

/*
 * What the registry takes and gives: its options and the results of its calls.
 */

/** How a registry behaves; every field has a default. */
export interface RegistryOptions {
  /** Default: the system clock. Tests pass a fake one. */
  readonly clock?: Clock;
  /** Default: ttl 10s, deregister_after 60s, both within 1s..1h. */
  readonly liveness?: LivenessPolicy;
  /** Events kept for resuming watchers. Default 10,000. */
  readonly historyLimit?: number;
  /** How often an idle Watch stream gets a progress message. Default 10s. */
  readonly progressIntervalMs?: number;
  /** Default: snapshots in chunks of 500, watchers ended 10,000 events behind. */
  readonly watchLimits?: WatchLimits;
  /** Told about failures no caller sees, such as a failed expiry write. */
  readonly onBackgroundError?: (error: unknown) => void;
  /** Default: hold expiry when at least half of 3 or more instances are silent at once. */
  readonly expiryGuard?: ExpiryGuardPolicy;
  /** Told when mass-expiry protection starts or stops holding removals. */
  readonly onExpiryHoldChange?: (state: ExpiryHoldState) => void;
  /**
   * Told once when commits start failing (with the first failure) and once
   * when one succeeds again (`failure` undefined, `ended` the run that
   * ended), not at every failed commit: a full disk must not fill the log too.
   */
  readonly onWriteFailureChange?: (failure: WriteFailure | undefined, ended: WriteFailure | undefined) => void;
  /** Told of every synced commit: how long the store took to make it durable, and the changes it carried. */
  readonly onCommitted?: (durationMs: number, changes: number) => void;
  /** Told when the registry, as it opens, starts a history of its own (see `HistoryBranch`). */
  readonly onHistoryBranched?: (branch: HistoryBranch) => void;
  /** Default: up to 256 Discover answers, 20,000 instances in all, are reused while exact. */
  readonly answerCache?: AnswerCacheLimits;
  /**
   * Set for a follower: the leader it copies, as named in the refusal of
   * every write. A follower takes changes only through `copy` and
   * `replaceAll`, and tracks no liveness (its leader decides health and
   * expiry). Default: a registry of its own.
   */
  readonly followerOf?: string;
}

/**
 * A history of its own, started as the registry opened at `revision`: a
 * follower's data directory opened to take writes (`promoted`), or a copy
 * of a data directory (`copied`). Watchers of `from` at or below
 * `revision` resume here; later ones get a snapshot.
 */
export interface HistoryBranch {
  readonly why: "promoted" | "copied";
  readonly revision: number;
  readonly from: string;
  readonly to: string;
}

/** A write's outcome: the instance as stored, and the revision that stored it. */
export interface Registered {
  readonly instance: InstanceRecord;
  readonly revision: number;
}

/** What a heartbeat tells its agent: the health and ttl in force, and whether an operator drained it. */
export interface HeartbeatResult {
  readonly health: Health;
  readonly ttlMs: number;
  readonly revision: number;
  /** An operator drained the instance: its agent may stop taking new work. */
  readonly drained: boolean;
}

/** Discover's answer: the matching instances, sorted by service and id, as of one revision. */
export interface Discovered {
  readonly instances: readonly InstanceRecord[];
  readonly revision: number;
}

/**
 * Whether a service can take traffic: `serving` with at least one HEALTHY
 * instance, `not-serving` with instances but none HEALTHY, `unknown` with none.
 */
export type Availability = "serving" | "not-serving" | "unknown";

/** Counts for status pages and metrics. */
export interface RegistryStats {
  readonly revision: number;
  readonly services: number;
  readonly instances: number;
  readonly byHealth: Readonly<Record<Health, number>>;
  /** Drained instances, of any health. */
  readonly drained: number;
  readonly watchers: number;
  readonly expiryHold: ExpiryHoldState;
  /** Synced store commits since start, and the changes they carried. */
  readonly commits: number;
  readonly committedChanges: number;
  /** Set while commits fail; undefined once one succeeds. */
  readonly writeFailure: WriteFailure | undefined;
  /** Changes applied since the registry was opened, by kind (expirations, health changes, ...). */
  readonly events: Readonly<Record<EventType, number>>;
}

/** Why the registry's writes are failing, and since when. */
export interface WriteFailure {
  /** The store's reason for the last failed commit, such as a full disk. */
  readonly reason: string;
  /** Wall-clock milliseconds of the first failure in this run of failures. */
  readonly since: number;
  /** Commits that failed in this run. */
  readonly failedCommits: number;
}
