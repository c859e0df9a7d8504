import type { Clock, Timer } from "../../src/domain/clock.js";

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. `advance` fires due timers in order,
 * letting the promises they start settle in between, so TTL logic can be
 * driven through minutes in milliseconds. The wall clock can jump on its own.
 */
export class FakeClock implements Clock {
  private monotonic = 1_000;
  private wall = Date.UTC(2026, 0, 1);
  private seq = 0;
  private readonly timers: Scheduled[] = [];

  monotonicNow(): number {
    return this.monotonic;
  }

  wallNow(): number {
    return this.wall;
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    const timer: Scheduled = { at: this.monotonic + Math.max(0, delayMs), seq: this.seq++, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves both clocks forward by `ms`, firing every timer that comes due. */
  async advance(ms: number): Promise<void> {
    const target = this.monotonic + ms;
    for (;;) {
      await settle();
      const next = this.nextDue(target);
      if (next === undefined) break;
      this.wall += next.at - this.monotonic;
      this.monotonic = next.at;
      next.cancelled = true;
      next.callback();
    }
    this.wall += target - this.monotonic;
    this.monotonic = target;
    await settle();
  }

  /** Moves only the wall clock, as an NTP step or an operator would. */
  jumpWallClock(ms: number): void {
    this.wall += ms;
  }

  private nextDue(limit: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const timer of this.timers) {
      if (timer.cancelled || timer.at > limit) continue;
      if (best === undefined || timer.at < best.at || (timer.at === best.at && timer.seq < best.seq)) best = timer;
    }
    return best;
  }
}

/** Lets pending I/O and promise callbacks run (LevelDB commits finish on the thread pool). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 5));
}
