import type { Clock, Timer } from "./clock.js";
import { DeadlineHeap } from "./deadline-heap.js";
import { parseInstanceKey, type Health, type InstanceRecord } from "./instance.js";
import type { Transaction } from "./transaction.js";

/** When an instance last proved it was alive. */
export interface Beat {
  /** Monotonic milliseconds: what deadlines are measured from. */
  readonly monotonic: number;
  /** Wall-clock milliseconds: what last_heartbeat_at reports. */
  readonly wall: number;
}

/** What the health rules say should happen to an instance now. */
export type Verdict =
  | { readonly kind: "keep"; readonly nextCheck: number }
  | { readonly kind: "mark-unhealthy"; readonly nextCheck: number }
  | { readonly kind: "expire" };

/**
 * The health rules. Silent for `ttl`: UNHEALTHY. Silent `deregister_after`
 * longer: expired. Deadlines are monotonic, so wall-clock jumps expire nobody.
 */
export function judge(instance: InstanceRecord, beat: Beat, now: number): Verdict {
  const unhealthyAt = beat.monotonic + instance.ttlMs;
  const expireAt = unhealthyAt + instance.deregisterAfterMs;
  if (now >= expireAt) return { kind: "expire" };
  if (now < unhealthyAt) return { kind: "keep", nextCheck: unhealthyAt };
  const health: Health = instance.health;
  return health === "unhealthy" ? { kind: "keep", nextCheck: expireAt } : { kind: "mark-unhealthy", nextCheck: expireAt };
}

/**
 * Tracks heartbeats and calls `onDue` when some instance may need a health
 * transition. One timer serves every instance: it is armed for the earliest
 * deadline only.
 */
export class LivenessTracker {
  private readonly beats = new Map<string, Beat>();
  private readonly deadlines = new DeadlineHeap();
  private timer: Timer | undefined;
  private timerDue = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: () => void,
  ) {}

  /** Records a heartbeat now; the existing deadline entry is rechecked when due. */
  beat(key: string): Beat {
    const beat = { monotonic: this.clock.monotonicNow(), wall: this.clock.wallNow() };
    this.beats.set(key, beat);
    return beat;
  }

  lastBeat(key: string): Beat | undefined {
    return this.beats.get(key);
  }

  forget(key: string): void {
    this.beats.delete(key);
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
 */
export function applyHealthRules(tx: Transaction, liveness: LivenessTracker, now: number): void {
  for (const key of liveness.takeDue()) {
    const { service, id } = parseInstanceKey(key);
    const instance = tx.get(service, id);
    const beat = liveness.lastBeat(key);
    if (instance === undefined || beat === undefined) {
      liveness.forget(key);
      continue;
    }
    const verdict = judge(instance, beat, now);
    if (verdict.kind === "expire") {
      tx.remove("expired", instance);
      continue;
    }
    if (verdict.kind === "mark-unhealthy") tx.put("health-changed", { ...instance, health: "unhealthy" }, instance);
    liveness.schedule(key, verdict.nextCheck);
  }
}
