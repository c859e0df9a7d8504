import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import type { EventType as DomainEventType } from "../domain/event.js";
import type { WatchBatch, WatchEvent } from "../domain/watch-stream.js";
import { EventSchema, EventType, HealthStatus, InstanceHeartbeatSchema, WatchResponseSchema, type Event, type WatchResponse } from "../../gen/muster/v1/registry_pb.js";
import { healthToWire, sharedInstanceToWire } from "./convert.js";

/*
 * Watch answers on the wire. A live change goes to every watcher of it, so
 * what it becomes on the wire is made once and shared.
 */

const eventTypeToProto: Record<DomainEventType, EventType> = {
  registered: EventType.REGISTERED,
  updated: EventType.UPDATED,
  "health-changed": EventType.HEALTH_CHANGED,
  "drain-changed": EventType.DRAIN_CHANGED,
  deregistered: EventType.DEREGISTERED,
  expired: EventType.EXPIRED,
};

const eventTypeFromProto = new Map(Object.entries(eventTypeToProto).map(([domain, wire]) => [wire, domain as DomainEventType]));

/** The domain's kind of change for a wire EventType; undefined for UNSPECIFIED or a kind this build does not know. */
export function eventTypeFromWire(type: EventType): DomainEventType | undefined {
  return eventTypeFromProto.get(type);
}

/**
 * Wire events by the domain's WatchEvent. WatchHub gives every watcher of a
 * change the same WatchEvent objects, so a live event is converted (and, on
 * the gRPC fast path, encoded) once, not once per watcher; a snapshot's
 * events are one watcher's and die with it.
 */
const wireEvents = new WeakMap<WatchEvent, Event>();
/** The one-event answers that carry a live event, by the batch's revision. */
const oneEventAnswers = new WeakMap<WatchEvent, Map<number, WatchResponse>>();

function eventToWire(watchEvent: WatchEvent): Event {
  let wire = wireEvents.get(watchEvent);
  if (wire === undefined) {
    const { event, removed } = watchEvent;
    wire = create(EventSchema, {
      type: eventTypeToProto[event.type],
      instance: sharedInstanceToWire(event.instance),
      previousHealth: event.previous === undefined ? HealthStatus.UNSPECIFIED : healthToWire(event.previous.health),
      revision: BigInt(event.revision),
      time: timestampFromMs(event.time),
      removed,
    });
    wireEvents.set(watchEvent, wire);
  }
  return wire;
}

/**
 * A watch stream's batches as wire answers, each made when it is read and
 * each naming `history`, the registry's when the stream opened.
 * `release` runs once, when the stream ends, fails, or its reader stops.
 * A stream ended by `signal` (the call's deadline, or its client leaving)
 * ends with the signal's reason, not as if the watch were done: otherwise
 * Connect answers a deadline with a clean end of stream.
 *
 * Not an async generator: a suspended generator keeps its last batch
 * referenced until the next one, and an idle watcher's last batch is often
 * its whole snapshot, held for as long as it stays connected.
 */
export function watchAnswers(stream: AsyncIterator<WatchBatch>, history: string, signal: AbortSignal, release: () => void): AsyncIterableIterator<WatchResponse> {
  let released = false;
  const releaseOnce = () => {
    if (!released) release();
    released = true;
  };
  return {
    async next() {
      try {
        const next = await stream.next();
        if (next.done === true) {
          releaseOnce();
          if (signal.aborted) throw ConnectError.from(signal.reason);
          return { value: undefined, done: true };
        }
        return { value: watchBatchToWire(next.value, history), done: false };
      } catch (error) {
        releaseOnce();
        throw error;
      }
    },
    return() {
      releaseOnce();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * A live change usually reaches every watcher as the same one-event answer:
 * that answer is made once. Its watchers share one history too, since a
 * change of history (a follower's snapshot) ends every open stream.
 */
function watchBatchToWire(batch: WatchBatch, history: string): WatchResponse {
  const only = batch.events.length === 1 ? batch.events[0] : undefined;
  if (only === undefined || batch.snapshot || batch.more) return newWatchResponse(batch, history);
  let answers = oneEventAnswers.get(only);
  if (answers === undefined) oneEventAnswers.set(only, (answers = new Map<number, WatchResponse>()));
  let answer = answers.get(batch.revision);
  if (answer === undefined) answers.set(batch.revision, (answer = newWatchResponse(batch, history)));
  return answer;
}

function newWatchResponse(batch: WatchBatch, history: string): WatchResponse {
  return create(WatchResponseSchema, {
    events: batch.events.map(eventToWire),
    revision: BigInt(batch.revision),
    snapshot: batch.snapshot,
    more: batch.more,
    history,
    heartbeats: (batch.heartbeats ?? []).map(({ service, id, at }) => create(InstanceHeartbeatSchema, { service, id, at: timestampFromMs(at) })),
  });
}
