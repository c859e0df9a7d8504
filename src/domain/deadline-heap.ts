interface Entry {
  readonly deadline: number;
  readonly key: string;
}

/**
 * A binary min-heap of (deadline, key). Entries are never updated in place:
 * a heartbeat only moves the deadline later, so a stale entry is found when
 * it comes due and simply re-pushed. That keeps heartbeats O(1). A key can
 * have several entries (an update or a health change schedules a check of
 * its own); each is rescheduled from the same last heartbeat, so they meet
 * at one deadline, where `popDue` returns the key once.
 */
export class DeadlineHeap {
  private readonly entries: Entry[] = [];

  get size(): number {
    return this.entries.length;
  }

  /** The earliest deadline, or undefined when empty. */
  peek(): number | undefined {
    return this.entries[0]?.deadline;
  }

  push(deadline: number, key: string): void {
    const entries = this.entries;
    entries.push({ deadline, key });
    let index = entries.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (at(entries, parent).deadline <= deadline) break;
      swap(entries, index, parent);
      index = parent;
    }
  }

  /**
   * Removes the entries whose deadline is at or before `now` and returns
   * their keys, each once: a key judged twice in one sweep would make its
   * health change, or its expiry, twice.
   */
  popDue(now: number): string[] {
    const due = new Set<string>();
    while (this.entries.length > 0 && at(this.entries, 0).deadline <= now) due.add(this.pop());
    return [...due];
  }

  private pop(): string {
    const entries = this.entries;
    const top = at(entries, 0);
    const last = entries.pop();
    if (last !== undefined && entries.length > 0) {
      entries[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < entries.length && at(entries, left).deadline < at(entries, smallest).deadline) smallest = left;
        if (right < entries.length && at(entries, right).deadline < at(entries, smallest).deadline) smallest = right;
        if (smallest === index) break;
        swap(entries, index, smallest);
        index = smallest;
      }
    }
    return top.key;
  }
}

function at(entries: Entry[], index: number): Entry {
  const entry = entries[index];
  if (entry === undefined) throw new Error(`deadline heap index ${index} out of range`);
  return entry;
}

function swap(entries: Entry[], a: number, b: number): void {
  const first = at(entries, a);
  entries[a] = at(entries, b);
  entries[b] = first;
}
