import { isRemoval, type RegistryEvent } from "./event.js";
import type { Filter } from "./filter.js";
import type { InstanceRecord } from "./instance.js";
import { RegistryError } from "./registry-error.js";

/** An event as one watcher sees it. */
export interface WatchEvent {
  readonly event: RegistryEvent;
  /** The instance is no longer in this watcher's view after the event. */
  readonly removed: boolean;
}

/** Both ways a watcher can see an event, made once per change and shared by every watcher, so what is derived from them (wire forms, encodings) can be too. */
export interface EventViews {
  readonly kept: WatchEvent;
  readonly removed: WatchEvent;
}

/** The two views of one event. */
export function eventViews(event: RegistryEvent): EventViews {
  return { kept: { event, removed: false }, removed: { event, removed: true } };
}

/** When an instance last sent a heartbeat (wall-clock milliseconds), as a watcher that asked for heartbeats learns it. */
export interface InstanceHeartbeat {
  readonly service: string;
  readonly id: string;
  readonly at: number;
}

/**
 * One message of a Watch stream. `revision` promises that every matching
 * change up to it has been delivered; it is 0 while `more` is set.
 */
export interface WatchBatch {
  readonly events: readonly WatchEvent[];
  readonly revision: number;
  /** The events are the full current state: replace the view. */
  readonly snapshot: boolean;
  /** A snapshot continues in the next batch. */
  readonly more: boolean;
  /** For a watcher that asked for them: instances that sent a heartbeat since the last batch that had some. Such a batch has no events. */
  readonly heartbeats?: readonly InstanceHeartbeat[];
}

/** A queued batch; heartbeats wait in a map, so that a reader that falls behind holds one entry per instance, not one per heartbeat. */
interface Queued {
  readonly batch: WatchBatch;
  readonly liveEvents: number;
  readonly heartbeats?: Map<string, InstanceHeartbeat>;
}

/** The queued batch that carries heartbeats. */
interface QueuedHeartbeats extends Queued {
  readonly heartbeats: Map<string, InstanceHeartbeat>;
}

/** Limits for one watcher. */
export interface WatchLimits {
  /** Instances per snapshot message, and heartbeats per heartbeats message. Default 500. */
  readonly snapshotChunk: number;
  /** Live events a watcher may fall behind before it is ended. Default 10,000. */
  readonly maxBacklog: number;
}

/**
 * One watcher's stream: the changes matching its filter, queued until it
 * reads them. A watcher that falls more than `maxBacklog` events behind is
 * ended with RESOURCE_EXHAUSTED, so a stalled reader cannot grow memory
 * without bound; it can resume from its last revision.
 */
export class WatchStream implements AsyncIterableIterator<WatchBatch> {
  private readonly queue: Queued[] = [];
  private backlog = 0;
  private failure: Error | undefined;
  private done = false;
  private wake: (() => void) | undefined;
  /** Whether anything was queued since the last progress tick. */
  private active = true;
  /** The queued batch of heartbeats, while it is unread. */
  private unreadHeartbeats: QueuedHeartbeats | undefined;

  constructor(
    private readonly filter: Filter,
    private readonly limits: WatchLimits,
    private readonly onClose: (stream: WatchStream) => void,
    /** Whether the watcher asked to hear heartbeats (see `heartbeats`). */
    readonly wantsHeartbeats = false,
  ) {}

  /** Queues the full current state, split into chunks. */
  pushSnapshot(instances: readonly InstanceRecord[], revision: number, time: number): void {
    const chunk = this.limits.snapshotChunk;
    for (let start = 0; start === 0 || start < instances.length; start += chunk) {
      const events = instances.slice(start, start + chunk).map((instance) => ({
        event: { type: "registered" as const, instance, previous: undefined, revision: instance.revision, time },
        removed: false,
      }));
      const more = start + chunk < instances.length;
      this.enqueue({ events, revision: more ? 0 : revision, snapshot: start === 0, more }, 0);
    }
  }

  /**
   * Queues the events that concern this watcher. Always queues when
   * `announce` is set, so a new watcher learns the revision it starts at.
   */
  offer(events: readonly RegistryEvent[], revision: number, announce = false, views: readonly EventViews[] = events.map(eventViews)): void {
    if (this.done) return;
    const visible: WatchEvent[] = [];
    events.forEach((event, index) => {
      const before = event.previous !== undefined && this.filter.matches(event.previous);
      const after = !isRemoval(event) && this.filter.matches(event.instance);
      const view = views[index] as EventViews;
      if (before || after) visible.push(after ? view.kept : view.removed);
    });
    if (visible.length > 0 || announce) this.enqueue({ events: visible, revision, snapshot: false, more: false }, visible.length);
  }

  /**
   * Queues the heartbeats of the instances this watcher sees, at `revision`
   * (every change up to it is queued already). While a batch of heartbeats
   * is still unread they join it, so a reader that falls behind holds at
   * most one heartbeat per instance.
   */
  heartbeats(beaten: readonly { readonly instance: InstanceRecord; readonly at: number }[], revision: number): void {
    if (this.done || !this.wantsHeartbeats) return;
    const seen = beaten.filter(({ instance }) => this.filter.matches(instance));
    if (seen.length === 0) return;
    const unread = this.heartbeatsLast(revision);
    for (const { instance, at } of seen) unread.set(`${instance.service}/${instance.id}`, { service: instance.service, id: instance.id, at });
  }

  /** Sends the current revision to a watcher that has been idle since the last tick. */
  progress(revision: number): void {
    if (!this.active && this.queue.length === 0) this.enqueue({ events: [], revision, snapshot: false, more: false }, 0);
    this.active = false;
  }

  /** Ends the stream with an error the reader will see after nothing more. */
  fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.queue.length = 0;
    this.finish();
  }

  async next(): Promise<IteratorResult<WatchBatch>> {
    for (;;) {
      const queued = this.queue.shift();
      if (queued !== undefined) {
        this.backlog -= queued.liveEvents;
        if (queued.heartbeats === undefined) return { value: queued.batch, done: false };
        return { value: { ...queued.batch, heartbeats: this.takeHeartbeats(queued, queued.heartbeats) }, done: false };
      }
      if (this.failure !== undefined) {
        const failure = this.failure;
        this.failure = undefined;
        throw failure;
      }
      if (this.done) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  return(): Promise<IteratorResult<WatchBatch>> {
    this.queue.length = 0;
    this.failure = undefined;
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private enqueue(batch: WatchBatch, liveEvents: number): void {
    this.queue.push({ batch, liveEvents });
    this.active = true;
    this.backlog += liveEvents;
    if (this.backlog > this.limits.maxBacklog) {
      this.fail(
        new RegistryError(
          "resource-exhausted",
          `watcher fell more than ${this.limits.maxBacklog} events behind; resume from the last revision it received`,
        ),
      );
      return;
    }
    this.wakeReader();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onClose(this);
    this.wakeReader();
  }

  /**
   * The unread heartbeats, queued last at `revision`. An unread batch that
   * changes were queued behind moves behind them and takes their revision,
   * so a watcher never hears of a heartbeat before the registration of its
   * instance (a follower would drop it, having no such instance yet).
   */
  private heartbeatsLast(revision: number): Map<string, InstanceHeartbeat> {
    const unread = this.unreadHeartbeats;
    if (unread !== undefined && this.queue.at(-1) === unread) return unread.heartbeats;
    if (unread !== undefined) this.queue.splice(this.queue.indexOf(unread), 1);
    const queued: QueuedHeartbeats = { batch: { events: [], revision, snapshot: false, more: false }, liveEvents: 0, heartbeats: unread?.heartbeats ?? new Map<string, InstanceHeartbeat>() };
    this.unreadHeartbeats = queued;
    this.queue.push(queued);
    this.active = true;
    this.wakeReader();
    return queued.heartbeats;
  }

  /** Up to a snapshot chunk of the item's heartbeats; the rest stay first in the queue, so no message grows past what gRPC clients accept (4 MiB by default). */
  private takeHeartbeats(queued: Queued, heartbeats: Map<string, InstanceHeartbeat>): InstanceHeartbeat[] {
    const taken: InstanceHeartbeat[] = [];
    for (const [key, heartbeat] of heartbeats) {
      if (taken.length === this.limits.snapshotChunk) break;
      taken.push(heartbeat);
      heartbeats.delete(key);
    }
    if (heartbeats.size > 0) this.queue.unshift(queued);
    else this.unreadHeartbeats = undefined;
    return taken;
  }

  private wakeReader(): void {
    this.wake?.();
    this.wake = undefined;
  }
}
