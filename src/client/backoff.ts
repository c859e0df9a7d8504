/** How retries space themselves out while the registry is unreachable. */
export interface BackoffOptions {
  /** The first delay. Default 200ms. */
  readonly initialMs?: number;
  /** The longest delay. Default 10s. */
  readonly maxMs?: number;
}

/**
 * Exponential backoff with full jitter: attempt n waits a random time up to
 * min(max, initial * 2^n), so a fleet that lost the registry together does
 * not come back in lockstep.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 200;
  const max = options.maxMs ?? 10_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.max(initial / 2, random() * ceiling);
}
