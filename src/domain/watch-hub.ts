import type { Clock, Timer } from "./clock.js";
import type { RegistryEvent } from "./event.js";
import type { Filter } from "./filter.js";
import type { InstanceRecord } from "./instance.js";
import { eventViews, WatchStream, type WatchLimits } from "./watch-stream.js";

/** How often watchers that asked for heartbeats hear of them. */
const heartbeatsIntervalMs = 1_000;

/**
 * Fans committed changes out to every open watcher, and keeps idle streams
 * alive with progress messages every `progressIntervalMs` so watchers and
 * proxies know the stream still works. One timer serves all watchers.
 * Heartbeats, which are not changes, go once a second to the watchers that
 * asked for them, the last one of each instance only.
 */
export class WatchHub {
  private readonly streams = new Set<WatchStream>();
  private timer: Timer | undefined;
  private heartbeatWatchers = 0;
  /** The time of each heartbeat since the last round, by instance key; kept only while some watcher asked for heartbeats. */
  private readonly beaten = new Map<string, number>();
  private heartbeatsTimer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly progressIntervalMs: number,
    private readonly limits: WatchLimits,
    private readonly currentRevision: () => number,
    /** The instance a key names now, if it is still registered. */
    private readonly instance: (key: string) => InstanceRecord | undefined,
  ) {}

  /** Opens a stream; the caller queues its starting state before yielding. */
  open(filter: Filter, heartbeats = false): WatchStream {
    const stream = new WatchStream(filter, this.limits, (closed) => this.closed(closed), heartbeats);
    this.streams.add(stream);
    if (heartbeats) this.heartbeatWatchers++;
    this.timer ??= this.clock.setTimer(this.progressIntervalMs, () => this.tick());
    return stream;
  }

  /** An instance sent a heartbeat at wall-clock time `at`. */
  heartbeat(key: string, at: number): void {
    if (this.heartbeatWatchers === 0) return;
    this.beaten.set(key, at);
    this.heartbeatsTimer ??= this.clock.setTimer(heartbeatsIntervalMs, () => this.sendHeartbeats());
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

  /** Ends every stream with `error` and stops the timers. */
  closeAll(error: Error): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.heartbeatsTimer?.cancel();
    this.heartbeatsTimer = undefined;
    this.beaten.clear();
    for (const stream of [...this.streams]) stream.fail(error);
  }

  private closed(stream: WatchStream): void {
    if (this.streams.delete(stream) && stream.wantsHeartbeats) this.heartbeatWatchers--;
    if (this.heartbeatWatchers === 0) this.beaten.clear();
  }

  private sendHeartbeats(): void {
    this.heartbeatsTimer = undefined;
    const beaten: { instance: InstanceRecord; at: number }[] = [];
    for (const [key, at] of this.beaten) {
      const instance = this.instance(key);
      if (instance !== undefined) beaten.push({ instance, at });
    }
    this.beaten.clear();
    if (beaten.length === 0) return;
    const revision = this.currentRevision();
    for (const stream of this.streams) stream.heartbeats(beaten, revision);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.streams.size === 0) return;
    const revision = this.currentRevision();
    for (const stream of this.streams) stream.progress(revision);
    this.timer = this.clock.setTimer(this.progressIntervalMs, () => this.tick());
  }
}
