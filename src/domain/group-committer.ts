import { parseInstanceKey, type InstanceRecord } from "./instance.js";
import type { InstanceIndex } from "./instance-index.js";
import { RegistryError } from "./registry-error.js";
import type { RegistryStore, Restore } from "./registry-store.js";
import type { WriteFailure } from "./registry-types.js";
import { Transaction } from "./transaction.js";

/** How the committer reads and updates the registry it serves. */
export interface CommitHooks {
  readonly index: InstanceIndex;
  readonly currentRevision: () => number;
  /** Wall-clock time for the records and events of a group. */
  readonly now: () => number;
  /** A group is durable: make it visible and publish its events. */
  readonly applied: (tx: Transaction) => void;
  /** A group could not be written; nothing of it was applied. */
  readonly failed: (tx: Transaction) => void;
  readonly onBackgroundError: ((error: unknown) => void) | undefined;
  readonly onWriteFailureChange: ((failure: WriteFailure | undefined, ended: WriteFailure | undefined) => void) | undefined;
  readonly onCommitted: ((durationMs: number, changes: number) => void) | undefined;
}

interface Pending {
  readonly compute: (tx: Transaction) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: writes that arrive while a commit is being synced wait and
 * then go to disk together in one synced batch, so durability costs one
 * fsync per group instead of one per write.
 *
 * Each write is a synchronous function over a Transaction; it may throw
 * (for example NOT_FOUND) to fail alone without touching the others.
 */
export class GroupCommitter {
  private pending: Pending[] = [];
  private draining: Promise<void> | undefined;
  private inFlight: ReadonlySet<string> = new Set();
  private closed = false;
  private commits = 0;
  private writes = 0;
  /** What failed commits since the last good one touched: the next commit puts it back (see `Restore`). */
  private unsettled: { readonly keys: Set<string>; through: number } | undefined;
  private failure: WriteFailure | undefined;

  constructor(
    private readonly store: RegistryStore,
    private readonly historyLimit: number,
    private readonly hooks: CommitHooks,
  ) {}

  /** Runs `compute` in the next group; resolves once its changes are durable. */
  run<T>(compute: (tx: Transaction) => T): Promise<T> {
    if (this.closed) return Promise.reject(new RegistryError("unavailable", "the registry is shutting down"));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ compute, resolve: resolve as (value: unknown) => void, reject });
      this.draining ??= this.drain();
    });
  }

  /**
   * Like `run`, for work nobody awaits; failures go to onBackgroundError,
   * except UNAVAILABLE: a failed commit is told through onWriteFailureChange,
   * and a closing registry refuses work by design.
   */
  runInBackground(compute: (tx: Transaction) => void): void {
    this.run(compute).catch((error: unknown) => {
      if (!(error instanceof RegistryError && error.code === "unavailable")) this.hooks.onBackgroundError?.(error);
    });
  }

  /** Synced store commits so far, and the changes they carried: their ratio is the grouping. */
  counts(): { commits: number; writes: number } {
    return { commits: this.commits, writes: this.writes };
  }

  /** Why commits are failing, while they are. */
  writeFailure(): WriteFailure | undefined {
    return this.failure;
  }

  /** True while a commit that changes this instance key is being written. */
  isInFlight(key: string): boolean {
    return this.inFlight.has(key);
  }

  /** Lets queued writes finish, then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const group = this.pending;
      this.pending = [];
      const tx = new Transaction(this.hooks.index, this.hooks.currentRevision(), this.hooks.now());
      const outcomes = group.map((write) => {
        try {
          return { ok: true as const, value: write.compute(tx) };
        } catch (error) {
          return { ok: false as const, error };
        }
      });
      const failure = await this.write(tx);
      group.forEach((write, index) => {
        const outcome = outcomes[index];
        if (outcome === undefined) return;
        if (!outcome.ok) write.reject(outcome.error);
        else if (failure !== undefined) write.reject(failure);
        else write.resolve(outcome.value);
      });
    }
    this.draining = undefined;
  }

  /** The committed state of everything failed commits touched, made now from the committed index. */
  private restore(): Restore | undefined {
    if (this.unsettled === undefined) return undefined;
    const puts: InstanceRecord[] = [];
    const deletes: { service: string; id: string }[] = [];
    for (const key of this.unsettled.keys) {
      const { service, id } = parseInstanceKey(key);
      const committed = this.hooks.index.get(service, id);
      if (committed === undefined) deletes.push({ service, id });
      else puts.push(committed);
    }
    return { puts, deletes, eventsAfter: this.hooks.currentRevision(), eventsThrough: this.unsettled.through };
  }

  /** Remembers what a failed commit touched (for the next one's `Restore`) and that writes fail; returns the reason. */
  private failedCommit(tx: Transaction, error: unknown): string {
    this.unsettled ??= { keys: new Set(), through: 0 };
    for (const key of tx.touchedKeys()) this.unsettled.keys.add(key);
    this.unsettled.through = Math.max(this.unsettled.through, tx.lastRevision);
    const reason = error instanceof Error ? error.message : String(error);
    const first = this.failure === undefined;
    this.failure = { reason, since: this.failure?.since ?? this.hooks.now(), failedCommits: (this.failure?.failedCommits ?? 0) + 1 };
    if (first) this.hooks.onWriteFailureChange?.(this.failure, undefined);
    return reason;
  }

  /** Writes and applies a group; returns the error to give its writers, if any. */
  private async write(tx: Transaction): Promise<RegistryError | undefined> {
    if (tx.events.length === 0 && tx.history === undefined) return undefined;
    this.inFlight = tx.touchedKeys();
    const startedAt = performance.now();
    try {
      await this.store.commit(tx.toCommit(this.historyLimit, this.restore()));
    } catch (error) {
      const reason = this.failedCommit(tx, error);
      this.hooks.failed(tx);
      return new RegistryError("unavailable", `the registry could not write to its data directory: ${reason}`);
    } finally {
      this.inFlight = new Set();
    }
    this.unsettled = undefined;
    if (this.failure !== undefined) {
      const ended = this.failure;
      this.failure = undefined;
      this.hooks.onWriteFailureChange?.(undefined, ended);
    }
    this.commits++;
    this.writes += tx.events.length;
    this.hooks.onCommitted?.(performance.now() - startedAt, tx.events.length);
    this.hooks.applied(tx);
    return undefined;
  }
}
