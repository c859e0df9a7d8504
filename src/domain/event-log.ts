import type { RegistryEvent } from "./event.js";

/**
 * The recent history of changes, in memory, so a watcher can resume from a
 * revision without touching the disk. Every revision has exactly one event,
 * so the log is contiguous and indexed by arithmetic. It holds exactly the
 * last `limit` events, as the store does; dropped entries are cut off the
 * array in chunks to keep appends O(1).
 */
export class EventLog {
  private events: RegistryEvent[] = [];
  /** Index of the oldest retained event in `events`. */
  private start = 0;

  constructor(private readonly limit: number) {}

  append(events: readonly RegistryEvent[]): void {
    this.events.push(...events);
    this.start = Math.max(this.start, this.events.length - this.limit);
    if (this.start > Math.max(1024, this.limit)) {
      this.events = this.events.slice(this.start);
      this.start = 0;
    }
  }

  /** Forgets every event: the history before a follower's snapshot is not known. */
  clear(): void {
    this.events = [];
    this.start = 0;
  }

  /**
   * The events after `revision` up to `current`, or undefined when the log
   * no longer holds all of them (the caller then sends a snapshot).
   */
  since(revision: number, current: number): readonly RegistryEvent[] | undefined {
    if (revision >= current) return [];
    const first = this.events[this.start]?.revision;
    if (first === undefined || revision + 1 < first) return undefined;
    return this.events.slice(this.start + revision + 1 - first);
  }
}
