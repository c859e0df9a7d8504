import type { Clock, Timer } from "./clock.js";
import type { RegistryEvent } from "./event.js";
import type { Filter } from "./filter.js";
import { eventViews, WatchStream, type WatchLimits } from "./watch-stream.js";

/**
 * Fans committed changes out to every open watcher, and keeps idle streams
 * alive with progress messages every `progressIntervalMs` so watchers and
 * proxies know the stream still works. One timer serves all watchers.
 */
export class WatchHub {
  private readonly streams = new Set<WatchStream>();
  private timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly progressIntervalMs: number,
    private readonly limits: WatchLimits,
    private readonly currentRevision: () => number,
  ) {}

  /** Opens a stream; the caller queues its starting state before yielding. */
  open(filter: Filter): WatchStream {
    const stream = new WatchStream(filter, this.limits, (closed) => this.streams.delete(closed));
    this.streams.add(stream);
    this.timer ??= this.clock.setTimer(this.progressIntervalMs, () => this.tick());
    return stream;
  }

  publish(events: readonly RegistryEvent[], revision: number): void {
    if (this.streams.size === 0) return;
    const views = events.map(eventViews);
    for (const stream of this.streams) stream.offer(events, revision, false, views);
  }

  /** How many watchers are connected. */
  get size(): number {
    return this.streams.size;
  }

  /** Ends every stream with `error` and stops the progress timer. */
  closeAll(error: Error): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (const stream of [...this.streams]) stream.fail(error);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.streams.size === 0) return;
    const revision = this.currentRevision();
    for (const stream of this.streams) stream.progress(revision);
    this.timer = this.clock.setTimer(this.progressIntervalMs, () => this.tick());
  }
}
