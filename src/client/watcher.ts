import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Event, Instance, InstanceHeartbeat, WatchRequest } from "../../gen/muster/v1/registry_pb.js";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import type { RegistryClient } from "./registry-client.js";

/** The filter fields of a Watch; all optional. */
export type WatchFilter = Partial<Omit<WatchRequest, "$typeName" | "$unknown" | "sinceRevision" | "history">>;

/** One step in a watcher's history. */
export interface WatchUpdate {
  /** The view was replaced: `events` is the full current state. */
  readonly snapshot: boolean;
  /** New changes (or, for a snapshot, the state), each reported once. */
  readonly events: readonly Event[];
  /** Everything matching up to here has been seen. */
  readonly revision: bigint;
  /**
   * With `includeHeartbeats` in the filter: the instances that sent a
   * heartbeat since the last update that had some, each with the time of
   * its last one (the view's instances have it as last_heartbeat_at
   * already). Empty otherwise; an update with heartbeats has no events.
   */
  readonly heartbeats: readonly InstanceHeartbeat[];
}

/** Where a RegistryWatcher starts, and how it reconnects; every field has a default. */
export interface WatcherOptions {
  /** Start after this revision instead of with a snapshot. Default 0n. */
  readonly sinceRevision?: bigint;
  /**
   * The history `sinceRevision` belongs to (`watcher.history` of an earlier
   * watcher, or WatchResponse.history). A registry on another history (its
   * data wiped or restored from a backup since) then starts with a
   * snapshot. Default none: `sinceRevision` is taken as the registry's.
   */
  readonly history?: string;
  readonly backoff?: BackoffOptions;
  /** Told each time the stream broke and is about to be resumed after `delayMs`. */
  readonly onRetry?: (error: ConnectError, delayMs: number) => void;
  /**
   * No message for this long and the stream is given up (UNAVAILABLE) and
   * resumed. The registry sends one at least every 10s, a progress message
   * when nothing changes. Default 30s. This catches what the client's PING
   * check cannot: a stream over HTTP/1.1, and a proxy that answers PINGs
   * itself for a registry that has gone quiet behind it. The time the
   * consumer spends on an update does not count: a slow consumer keeps its
   * stream. `Infinity` turns it off.
   */
  readonly silenceMs?: number;
  /** Told of every message from the registry, progress messages included: the stream works. */
  readonly onMessage?: (revision: bigint) => void;
  /**
   * Keep `view`, the matching instances now. Default true; a consumer that
   * keeps its own copy of every instance (a follower) saves the memory.
   */
  readonly keepView?: boolean;
}

/**
 * Follows a filter through broken streams and registry restarts: it resumes
 * from the last revision it saw, replaces its view when the registry sends a
 * snapshot, and never reports a change twice. Iterate it for the changes;
 * read `view` for the matching instances now. Invalid filters end it with
 * the registry's INVALID_ARGUMENT.
 */
export class RegistryWatcher implements AsyncIterable<WatchUpdate> {
  /** The matching instances, by "service/id". */
  readonly view = new Map<string, Instance>();
  private lastRevision: bigint;
  private lastHistory: string;
  private readonly abort = new AbortController();

  constructor(
    private readonly client: RegistryClient,
    private readonly filter: WatchFilter = {},
    private readonly options: WatcherOptions = {},
  ) {
    this.lastRevision = options.sinceRevision ?? 0n;
    this.lastHistory = options.history ?? "";
  }

  /** The revision the view reflects. */
  get revision(): bigint {
    return this.lastRevision;
  }

  /**
   * The history `revision` counts in, as the registry last named it. Sent
   * back on each resume, so a registry whose data was wiped or restored
   * since answers with a snapshot rather than changes that do not follow
   * the view's.
   */
  get history(): string {
    return this.lastHistory;
  }

  close(): void {
    this.abort.abort();
  }

  /** A method, not a property read, so checks after an await are not narrowed away. */
  private isClosed(): boolean {
    return this.abort.signal.aborted;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchUpdate> {
    let failures = 0;
    while (!this.isClosed()) {
      const silence = new AbortController();
      const silenceMs = this.options.silenceMs ?? 30_000;
      // While the consumer works on an update, messages wait unread: that is not the registry's silence.
      let consumerHolds = false;
      const giveUp = () => {
        if (!consumerHolds) silence.abort(new ConnectError(`no message from the registry in ${silenceMs / 1000}s`, Code.Unavailable));
      };
      // A timer longer than 2^31 - 1 ms would fire at once.
      const quiet = Number.isFinite(silenceMs) ? setTimeout(giveUp, silenceMs).unref() : undefined;
      try {
        let pending: Event[] | undefined;
        const signal = AbortSignal.any([this.abort.signal, silence.signal]);
        const stream = this.client.watch({ ...this.filter, sinceRevision: this.lastRevision, history: this.lastHistory }, { signal });
        for await (const message of stream) {
          quiet?.refresh();
          failures = 0;
          this.options.onMessage?.(message.revision);
          let update: WatchUpdate;
          if (message.snapshot) pending = [];
          if (pending !== undefined) {
            pending.push(...message.events);
            if (message.more) continue;
            update = this.replace(pending, message.revision, message.history);
            pending = undefined;
          } else {
            const fresh = message.events.filter((event) => event.revision > this.lastRevision);
            if (message.revision > this.lastRevision) this.lastRevision = message.revision;
            // A registry older than histories names none.
            if (message.history !== "") this.lastHistory = message.history;
            if (fresh.length === 0 && message.heartbeats.length === 0) continue;
            update = this.apply(fresh, message.heartbeats);
          }
          consumerHolds = true;
          yield update;
          consumerHolds = false;
          // A limit that ran out meanwhile starts over (refresh re-arms a timer that has fired).
          quiet?.refresh();
        }
      } catch (thrown) {
        if (this.isClosed()) return;
        const error = ConnectError.from(thrown);
        if (error.code === Code.InvalidArgument) throw error;
        const delay = backoffDelay(failures++, this.options.backoff);
        this.options.onRetry?.(error, delay);
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
      } finally {
        clearTimeout(quiet);
      }
    }
  }

  /** A snapshot's revision and history are taken only once it is whole: a stream broken inside one resumes from the old view. */
  private replace(events: Event[], revision: bigint, history: string): WatchUpdate {
    this.view.clear();
    if (this.options.keepView !== false) for (const event of events) if (event.instance !== undefined) this.view.set(keyOf(event.instance), event.instance);
    this.lastRevision = revision;
    if (history !== "") this.lastHistory = history;
    return { snapshot: true, events, revision, heartbeats: [] };
  }

  private apply(events: Event[], heartbeats: InstanceHeartbeat[]): WatchUpdate {
    if (this.options.keepView === false) return { snapshot: false, events, revision: this.lastRevision, heartbeats };
    for (const event of events) {
      if (event.instance === undefined) continue;
      if (event.removed) this.view.delete(keyOf(event.instance));
      else this.view.set(keyOf(event.instance), event.instance);
    }
    for (const heartbeat of heartbeats) {
      const key = keyOf(heartbeat);
      const instance = this.view.get(key);
      if (instance !== undefined && heartbeat.at !== undefined && (instance.lastHeartbeatAt === undefined || timestampMs(heartbeat.at) > timestampMs(instance.lastHeartbeatAt))) {
        this.view.set(key, { ...instance, lastHeartbeatAt: heartbeat.at });
      }
    }
    return { snapshot: false, events, revision: this.lastRevision, heartbeats };
  }
}

function keyOf(instance: Pick<Instance, "service" | "id">): string {
  return `${instance.service}/${instance.id}`;
}
