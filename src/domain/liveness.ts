import type { Clock, Timer } from "./clock.js";
import { DeadlineHeap } from "./deadline-heap.js";
import { parseInstanceKey, updateRecord, type Health, type InstanceRecord } from "./instance.js";
import type { ExpiryGuard } from "./expiry-guard.js";
import type { Transaction } from "./transaction.js";

/** When an instance last proved it was alive. */
export interface Beat {
  /** Monotonic milliseconds: what deadlines are measured from. */
  readonly monotonic: number;
  /** Wall-clock milliseconds: what last_heartbeat_at reports. */
  readonly wall: number;
}

/** What the health rules say should happen to an instance now; `silent` once its ttl has passed. */
export type Verdict =
  | { readonly kind: "keep"; readonly nextCheck: number; readonly silent: boolean }
  | { readonly kind: "mark-unhealthy"; readonly nextCheck: number; readonly silent: true }
  | { readonly kind: "expire"; readonly silent: true };

/**
 * The health rules. Silent for `ttl`: UNHEALTHY. Silent `deregister_after`
 * longer: expired. Deadlines are monotonic, so wall-clock jumps expire nobody.
 */
export function judge(instance: InstanceRecord, beat: Beat, now: number): Verdict {
  const unhealthyAt = beat.monotonic + instance.ttlMs;
  const expireAt = unhealthyAt + instance.deregisterAfterMs;
  if (now >= expireAt) return { kind: "expire", silent: true };
  if (now < unhealthyAt) return { kind: "keep", nextCheck: unhealthyAt, silent: false };
  const health: Health = instance.health;
  return health === "unhealthy" ? { kind: "keep", nextCheck: expireAt, silent: true } : { kind: "mark-unhealthy", nextCheck: expireAt, silent: true };
}

/**
 * Tracks heartbeats and calls `onDue` when some instance may need a health
 * transition. One timer serves every instance: it is armed for the earliest
 * deadline only.
 */
export class LivenessTracker {
  private readonly beats = new Map<string, Beat>();
  /** Instances past their ttl without a heartbeat. */
  private readonly silent = new Set<string>();
  private readonly deadlines = new DeadlineHeap();
  private timer: Timer | undefined;
  private timerDue = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: () => void,
  ) {}

  /** The current instant, on both clocks. */
  now(): Beat {
    return { monotonic: this.clock.monotonicNow(), wall: this.clock.wallNow() };
  }

  /** Records a heartbeat at `beat` (default: now); the existing deadline entry is rechecked when due. */
  beat(key: string, beat: Beat = this.now()): Beat {
    this.beats.set(key, beat);
    this.silent.delete(key);
    return beat;
  }

  lastBeat(key: string): Beat | undefined {
    return this.beats.get(key);
  }

  forget(key: string): void {
    this.beats.delete(key);
    this.silent.delete(key);
  }

  /** Notes that `key` has missed its ttl; a heartbeat clears it. */
  markSilent(key: string): void {
    this.silent.add(key);
  }

  /** How many tracked instances are past their ttl. */
  get silentCount(): number {
    return this.silent.size;
  }

  /** Asks for `key` to be checked at monotonic time `deadline`. */
  schedule(key: string, deadline: number): void {
    this.deadlines.push(deadline, key);
    this.arm();
  }

  /** Keys whose check is due now; the caller judges each and reschedules. */
  takeDue(): string[] {
    const due = this.deadlines.popDue(this.clock.monotonicNow());
    this.arm();
    return due;
  }

  /** How many instances are tracked. */
  get size(): number {
    return this.beats.size;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(): void {
    const next = this.deadlines.peek();
    if (this.stopped || next === undefined || next >= this.timerDue) return;
    this.timer?.cancel();
    this.timerDue = next;
    this.timer = this.clock.setTimer(Math.max(0, next - this.clock.monotonicNow()), () => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.onDue();
    });
  }
}

/**
 * Applies the health rules, within one group commit, to every instance whose
 * check is due at monotonic time `now`, and schedules each one's next check.
 * While `guard` holds (mass silence), expiries wait and are checked again
 * after `holdRecheckMs`.
 */
export function applyHealthRules(tx: Transaction, liveness: LivenessTracker, guard: ExpiryGuard, instances: number, now: number): void {
  const judged: { key: string; instance: InstanceRecord; verdict: Verdict }[] = [];
  for (const key of liveness.takeDue()) {
    const { service, id } = parseInstanceKey(key);
    const instance = tx.get(service, id);
    const beat = liveness.lastBeat(key);
    if (instance === undefined || beat === undefined) {
      liveness.forget(key);
      continue;
    }
    const verdict = judge(instance, beat, now);
    if (verdict.silent) liveness.markSilent(key);
    judged.push({ key, instance, verdict });
  }
  if (judged.length === 0) return;
  const holding = guard.evaluate(liveness.silentCount, instances);
  for (const { key, instance, verdict } of judged) {
    if (verdict.kind === "expire") {
      if (holding) liveness.schedule(key, now + holdRecheckMs);
      else tx.remove("expired", instance);
      continue;
    }
    if (verdict.kind === "mark-unhealthy") tx.put("health-changed", updateRecord(instance, { health: "unhealthy" }), instance);
    liveness.schedule(key, verdict.nextCheck);
  }
}

/** How often held expiries are looked at again. */
const holdRecheckMs = 1_000;
