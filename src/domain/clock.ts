/** A scheduled callback that can be cancelled. */
export interface Timer {
  cancel(): void;
}

/**
 * The registry's source of time. Liveness deadlines use the monotonic clock
 * so a wall-clock jump expires nobody; the wall clock only stamps records
 * and events. Tests pass a fake to drive TTLs without waiting.
 */
export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  monotonicNow(): number;
  /** Wall-clock milliseconds since the epoch. */
  wallNow(): number;
  /** Run `callback` once after `delayMs` monotonic milliseconds. */
  setTimer(delayMs: number, callback: () => void): Timer;
}

/** The real clock. Its timers do not keep the process alive. */
export const systemClock: Clock = {
  monotonicNow: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, delayMs);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
