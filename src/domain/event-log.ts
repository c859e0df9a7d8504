import type { RegistryEvent } from "./event.js";

/**
 * The recent history of changes, in memory, so a watcher can resume from a
 * revision without touching the disk. Every revision has exactly one event,
 * so the log is contiguous and indexed by arithmetic. It keeps at least
 * `limit` events and trims in chunks to stay cheap.
 */
export class EventLog {
  private events: RegistryEvent[];

  constructor(
    private readonly limit: number,
    initial: readonly RegistryEvent[],
  ) {
    this.events = initial.slice(-limit);
  }

  append(events: readonly RegistryEvent[]): void {
    this.events.push(...events);
    if (this.events.length > this.limit + Math.max(64, this.limit >> 2)) {
      this.events = this.events.slice(-this.limit);
    }
  }

  /**
   * The events after `revision` up to `current`, or undefined when the log
   * no longer holds all of them (the caller then sends a snapshot).
   */
  since(revision: number, current: number): readonly RegistryEvent[] | undefined {
    if (revision >= current) return [];
    const first = this.events[0]?.revision;
    if (first === undefined || revision + 1 < first) return undefined;
    return this.events.slice(revision + 1 - first);
  }
}
