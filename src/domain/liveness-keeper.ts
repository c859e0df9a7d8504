import type { Clock } from "./clock.js";
import { ExpiryGuard, type ExpiryGuardPolicy, type ExpiryHoldState } from "./expiry-guard.js";
import { instanceKey, updateRecord, type InstanceRecord } from "./instance.js";
import { applyHealthRules, LivenessTracker, type Beat } from "./liveness.js";
import type { Transaction } from "./transaction.js";

/** What the keeper needs from the registry that owns it. */
export interface LivenessKeeperHooks {
  /** Runs the health rules' changes as a group commit of their own, reporting failures elsewhere. */
  readonly runInBackground: (compute: (tx: Transaction) => void) => void;
  /** How many instances the registry holds: what mass-expiry protection measures silence against. */
  readonly instanceCount: () => number;
  /** An instance of `service` has beaten, so answers that showed its old last_heartbeat_at are stale. */
  readonly beaten: (service: string) => void;
  /** Called when mass-expiry protection starts or stops holding expiries. */
  readonly onExpiryHoldChange: (state: ExpiryHoldState) => void;
}

/**
 * The registry's side of liveness. It records heartbeats, schedules each
 * instance's next check and, when checks come due, applies the health rules
 * in one background group commit, holding expiries while too many instances
 * fall silent at once (see ExpiryGuard). It also shows records with their
 * last heartbeat time, which a heartbeat that changes nothing does not write.
 */
export class LivenessKeeper {
  private readonly tracker: LivenessTracker;
  private readonly guard: ExpiryGuard;
  /** The last copy of each record made with a newer heartbeat time, so readers keep getting the same object until the next beat. */
  private readonly refreshed = new WeakMap<InstanceRecord, InstanceRecord>();
  private sweepQueued = false;

  constructor(
    private readonly clock: Clock,
    guardPolicy: ExpiryGuardPolicy,
    private readonly hooks: LivenessKeeperHooks,
  ) {
    this.tracker = new LivenessTracker(clock, () => this.queueSweep());
    this.guard = new ExpiryGuard(guardPolicy, hooks.onExpiryHoldChange);
  }

  /** The current instant, on both clocks. */
  now(): Beat {
    return this.tracker.now();
  }

  /** Starts a loaded instance's ttl at `loadedAt`, one Beat shared by every instance loaded (100,000 at start-up). */
  track(instance: InstanceRecord, loadedAt: Beat): void {
    const key = instanceKey(instance.service, instance.id);
    this.tracker.beat(key, loadedAt);
    this.tracker.schedule(key, loadedAt.monotonic + instance.ttlMs);
  }

  /** Every heartbeat goes through here: it also retires the cached answers that showed the old time. */
  beat(service: string, key: string): Beat {
    this.hooks.beaten(service);
    return this.tracker.beat(key);
  }

  /**
   * A follower's copy of a heartbeat its leader took at wall-clock time
   * `at`: shown as last_heartbeat_at. A follower checks no ttl, so this
   * schedules nothing.
   */
  copyBeat(service: string, key: string, at: number): void {
    this.hooks.beaten(service);
    this.tracker.beat(key, { monotonic: this.clock.monotonicNow(), wall: at });
  }

  /** Asks for `key` to be checked at monotonic time `deadline`. */
  schedule(key: string, deadline: number): void {
    this.tracker.schedule(key, deadline);
  }

  /** The instance is gone: no more checks or beats for it. */
  forget(key: string): void {
    this.tracker.forget(key);
  }

  /** A failed group leaves its instances as they were: check them again after `delayMs`. */
  retryLater(keys: Iterable<string>, delayMs: number): void {
    const retryAt = this.clock.monotonicNow() + delayMs;
    for (const key of keys) this.tracker.schedule(key, retryAt);
  }

  /**
   * `instance` with its last heartbeat time, when a heartbeat came after
   * the record was written; the same object while that time has not
   * changed.
   */
  withLastBeat(instance: InstanceRecord): InstanceRecord {
    const beat = this.tracker.lastBeat(instanceKey(instance.service, instance.id));
    if (beat === undefined || beat.wall <= instance.lastHeartbeatAt) return instance;
    const copy = this.refreshed.get(instance);
    if (copy?.lastHeartbeatAt === beat.wall) return copy;
    const fresh = updateRecord(instance, { lastHeartbeatAt: beat.wall });
    this.refreshed.set(instance, fresh);
    return fresh;
  }

  /**
   * An operator's override of mass-expiry protection: silent instances
   * expire at their next check. Returns whether a hold was in force.
   */
  releaseExpiryHold(): boolean {
    return this.guard.release();
  }

  /** Mass-expiry protection's state, with the silent instances counted now. */
  expiryHold(): ExpiryHoldState {
    return { ...this.guard.current(), silent: this.tracker.silentCount, instances: this.hooks.instanceCount() };
  }

  /** Stops the check timer: nothing is judged after this. */
  stop(): void {
    this.tracker.stop();
  }

  private queueSweep(): void {
    if (this.sweepQueued) return;
    this.sweepQueued = true;
    this.hooks.runInBackground((tx) => {
      this.sweepQueued = false;
      applyHealthRules(tx, this.tracker, this.guard, this.hooks.instanceCount(), this.clock.monotonicNow());
    });
  }
}
