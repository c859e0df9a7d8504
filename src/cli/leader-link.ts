import { setTimeout as sleep } from "node:timers/promises";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { Logger } from "pino";
import { createRegistryClient, type RegistryClientOptions } from "../client/registry-client.js";
import { backoffDelay } from "../client/backoff.js";
import { RegistryWatcher } from "../client/watcher.js";
import type { CopiedChange } from "../domain/copied-changes.js";
import type { RegistryEvent } from "../domain/event.js";
import type { InstanceRecord } from "../domain/instance.js";
import { defaultLivenessPolicy } from "../domain/instance-spec.js";
import { RegistryError } from "../domain/registry-error.js";
import type { Registry } from "../domain/registry.js";
import { recordFromWire } from "../server/convert.js";
import type { LeaderWrites } from "../server/forwarded-writes.js";
import type { FollowingState, LeaderConnection } from "../server/registry-server-types.js";
import { eventTypeFromWire } from "../server/watch-answers.js";
import type { Event } from "../../gen/muster/v1/registry_pb.js";

/**
 * A follower's link to its leader (`muster serve --follow URL`): one Watch
 * of everything (unhealthy and drained instances too), resumed from the
 * follower's own revision after every break and every restart, and each
 * update made durable here at the leader's revisions before the next is
 * read. A snapshot from the leader (a first start, or a follower so far
 * behind that the leader's log no longer holds its revision) replaces the
 * follower's state. A change that does not follow the last one copied
 * (which the leader's Watch promises never to send) starts over from a
 * snapshot rather than copy around a gap.
 *
 * Writes given to the follower go to the leader through `writes`, a client
 * of its own that sends the writer's token, not the follower's.
 */
export class LeaderLink implements LeaderConnection {
  private connected = false;
  private lastError = "";
  private leaderRevision = 0n;
  /** Aborted by stop(): ends the wait before the next stream too. */
  private readonly stopping = new AbortController();
  private watcher: RegistryWatcher | undefined;
  private copying: Promise<void> | undefined;
  readonly writes: LeaderWrites;

  constructor(
    /** The leader's URL. */
    readonly leader: string,
    private readonly clientOptions: Omit<RegistryClientOptions, "baseUrl">,
    private readonly logger: Logger,
  ) {
    this.writes = createRegistryClient({ ...clientOptions, token: undefined, baseUrl: leader });
  }

  /** Whether the link holds a stream now, why the last one broke, and the leader's revision as it last said. */
  get state(): FollowingState {
    return { leader: this.leader, connected: this.connected, lastError: this.lastError, leaderRevision: this.leaderRevision };
  }

  /** Starts copying into `registry`, which must have been opened as this leader's follower. */
  start(registry: Registry): void {
    this.copying ??= this.copyLoop(registry);
  }

  /** Ends the stream; resolves once the update being written (if any) is durable. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.watcher?.close();
    await this.copying;
    this.connected = false;
    this.lastError = "this follower stopped following";
  }

  private async copyLoop(registry: Registry): Promise<void> {
    const client = createRegistryClient({ ...this.clientOptions, baseUrl: this.leader });
    let failures = 0;
    let fromSnapshot = false;
    while (!this.isStopped()) {
      // Each stream starts one change back, so the leader's change at this follower's revision is compared with its own first.
      const last = fromSnapshot ? undefined : registry.lastEvent();
      const stream = { broke: false };
      // The link resumes each broken stream itself, rather than the watcher, so that every stream is checked so.
      // Heartbeats too, so that last_heartbeat_at here is the leader's: a heartbeat that changes nothing is no change.
      const watcher = new RegistryWatcher(client, { includeUnhealthy: true, includeDrained: true, includeHeartbeats: true }, {
        sinceRevision: fromSnapshot ? 0n : BigInt(registry.currentRevision() - (last === undefined ? 0 : 1)),
        history: registry.history,
        keepView: false,
        onMessage: (revision) => {
          failures = 0;
          this.linked(revision);
        },
        onRetry: (error) => {
          stream.broke = true;
          watcher.close();
          this.broken(error.code === Code.Unauthenticated || error.code === Code.PermissionDenied ? `${error.message}; give this follower a read token of the leader (MUSTER_FOLLOW_TOKEN)` : error.message);
        },
      });
      this.watcher = watcher;
      try {
        let unchecked = last;
        for await (const update of watcher) {
          if (update.heartbeats.length > 0) registry.copyHeartbeats(update.heartbeats.flatMap(({ service, id, at }) => (at === undefined ? [] : [{ service, id, at: timestampMs(at) }])));
          if (update.snapshot) {
            await registry.replaceAll(update.events.map((event) => recordOf(event)), Number(update.revision), watcher.history);
          } else {
            if (update.events.length === 0 && unchecked !== undefined) continue;
            const own = unchecked;
            const events = own === undefined ? update.events : update.events.filter((event) => !isSameChange(own, event));
            if (own !== undefined && events.length === update.events.length) throw new DivergedHistory(own.revision);
            // Resumed here, so the leader vouches for this registry's changes: a history it names anew (it was promoted) is ours too.
            if (watcher.history !== registry.history) await registry.takeLeadersHistory(watcher.history);
            if (events.length > 0) await registry.copy(events.map((event) => changeOf(event)));
          }
          unchecked = undefined;
          fromSnapshot = false;
        }
        if (!stream.broke) return;
      } catch (error) {
        watcher.close();
        if (this.isStopped()) return;
        fromSnapshot = error instanceof DivergedHistory || (error instanceof RegistryError && error.code === "failed-precondition");
        this.broken(error instanceof DivergedHistory ? error.message : `could not copy the leader's changes: ${error instanceof Error ? error.message : String(error)}`);
      }
      const delayMs = backoffDelay(failures++);
      this.logger.debug({ leader: this.leader, retryInMs: Math.round(delayMs) }, "following the leader again soon");
      await sleep(delayMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }

  /** A method, not a property read, so checks after an await are not narrowed away. */
  private isStopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private linked(leaderRevision: bigint): void {
    this.leaderRevision = leaderRevision;
    if (this.connected) return;
    this.connected = true;
    this.lastError = "";
    this.logger.info({ leader: this.leader }, "following the leader");
  }

  private broken(reason: string): void {
    if (this.connected || reason !== this.lastError) this.logger.warn({ leader: this.leader }, `lost the leader: ${reason}`);
    this.connected = false;
    this.lastError = reason;
  }
}

/**
 * This follower's last change is not the leader's change at that revision:
 * the two took different writes (a follower promoted, and its old leader
 * brought back as its follower, say). Only a snapshot makes them one again.
 */
class DivergedHistory extends Error {
  constructor(revision: number) {
    super(`this follower's change at revision ${revision} is not the leader's: their histories differ from there; taking the leader's snapshot`);
  }
}

/** Whether the leader's `event` is the change this follower holds as `own`: the same kind, instance, revision and time. */
function isSameChange(own: RegistryEvent, event: Event): boolean {
  return Number(event.revision) === own.revision && eventTypeFromWire(event.type) === own.type && event.instance?.service === own.instance.service && event.instance.id === own.instance.id && event.time !== undefined && timestampMs(event.time) === own.time;
}

function recordOf(event: Event): InstanceRecord {
  if (event.instance === undefined) throw new Error(`the leader sent an event without its instance at revision ${event.revision}`);
  return recordFromWire(event.instance, defaultLivenessPolicy);
}

function changeOf(event: Event): CopiedChange {
  const type = eventTypeFromWire(event.type);
  if (type === undefined) throw new Error(`the leader sent an event of unknown type ${event.type} at revision ${event.revision}`);
  return { type, instance: recordOf(event), revision: Number(event.revision), time: event.time === undefined ? Date.now() : timestampMs(event.time) };
}
