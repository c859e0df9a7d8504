/**
 * Callers waiting for the registry to reach a revision: a follower answers
 * a write it sent on to its leader only once its own copy holds it, so
 * whoever wrote through it reads the write back from it. Few wait at once
 * (one per write in flight), so a plain list is enough.
 */
export class RevisionWaits {
  private readonly waiting = new Set<{ readonly revision: number; readonly done: () => void }>();

  /**
   * Resolves once `passed` reports `revision` or a later one, or when
   * `signal` aborts (the caller then answers without the copy). Never
   * rejects.
   */
  until(revision: number, current: number, signal: AbortSignal): Promise<void> {
    if (current >= revision || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wait = {
        revision,
        done: () => {
          this.waiting.delete(wait);
          signal.removeEventListener("abort", wait.done);
          resolve();
        },
      };
      this.waiting.add(wait);
      signal.addEventListener("abort", wait.done, { once: true });
    });
  }

  /** The registry reached `revision`: every wait for it or an earlier one ends. */
  passed(revision: number): void {
    if (this.waiting.size === 0) return;
    for (const wait of this.waiting) if (wait.revision <= revision) wait.done();
  }

  /** Ends every wait, as the registry closes. */
  endAll(): void {
    for (const wait of this.waiting) wait.done();
  }
}
