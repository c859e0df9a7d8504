import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs, timestampMs, type Duration } from "@bufbuild/protobuf/wkt";
import type { EventType as DomainEventType } from "../domain/event.js";
import type { FilterSpec } from "../domain/filter.js";
import type { Health, InstanceRecord } from "../domain/instance.js";
import { validateInstanceSpec, type InstanceInput, type LivenessPolicy } from "../domain/instance-spec.js";
import { RegistryError } from "../domain/registry-error.js";
import type { WatchBatch, WatchEvent } from "../domain/watch-stream.js";
import {
  EventSchema,
  EventType,
  HealthStatus,
  InstanceSchema,
  WatchResponseSchema,
  type Event,
  type Instance,
  type WatchResponse,
} from "../../gen/muster/v1/registry_pb.js";

/*
 * Conversions between the wire messages and the domain. The domain works in
 * plain numbers (milliseconds, revisions); the wire in Duration, Timestamp
 * and uint64.
 */

const healthToProto: Record<Health, HealthStatus> = {
  healthy: HealthStatus.HEALTHY,
  degraded: HealthStatus.DEGRADED,
  unhealthy: HealthStatus.UNHEALTHY,
};

const eventTypeToProto: Record<DomainEventType, EventType> = {
  registered: EventType.REGISTERED,
  updated: EventType.UPDATED,
  "health-changed": EventType.HEALTH_CHANGED,
  deregistered: EventType.DEREGISTERED,
  expired: EventType.EXPIRED,
};

export function healthToWire(health: Health): HealthStatus {
  return healthToProto[health];
}

/** UNSPECIFIED means "not said"; a number outside the enum is rejected. */
export function healthFromWire(field: string, status: HealthStatus): Health | undefined {
  switch (status) {
    case HealthStatus.UNSPECIFIED:
      return undefined;
    case HealthStatus.HEALTHY:
      return "healthy";
    case HealthStatus.DEGRADED:
      return "degraded";
    case HealthStatus.UNHEALTHY:
      return "unhealthy";
    default:
      throw RegistryError.invalid(field, "must be HEALTH_STATUS_HEALTHY, HEALTH_STATUS_DEGRADED or HEALTH_STATUS_UNHEALTHY", status);
  }
}

/** Undefined when absent; NaN for a malformed Duration, which validation rejects. */
export function durationToMs(duration: Duration | undefined): number | undefined {
  if (duration === undefined) return undefined;
  const { seconds, nanos } = duration;
  const wellFormed = Math.abs(nanos) < 1e9 && (seconds === 0n || nanos === 0 || seconds > 0n === nanos > 0);
  return wellFormed ? Number(seconds) * 1000 + nanos / 1e6 : Number.NaN;
}

export function instanceFromWire(instance: Instance | undefined): InstanceInput | undefined {
  if (instance === undefined) return undefined;
  return {
    service: instance.service,
    id: instance.id,
    address: instance.address,
    version: instance.version,
    tags: instance.tags,
    labels: instance.labels,
    zone: instance.zone,
    weight: instance.weight,
    capabilities: instance.capabilities,
    ttlMs: durationToMs(instance.ttl),
    deregisterAfterMs: durationToMs(instance.deregisterAfter),
  };
}

/** Records are immutable, so each is converted once however often it is sent. */
const wireInstances = new WeakMap<InstanceRecord, Instance>();

export function instanceToWire(record: InstanceRecord): Instance {
  let wire = wireInstances.get(record);
  if (wire === undefined) {
    wire = create(InstanceSchema, {
      service: record.service,
      id: record.id,
      address: record.address,
      version: record.version,
      tags: [...record.tags],
      labels: { ...record.labels },
      zone: record.zone,
      weight: record.weight,
      capabilities: [...record.capabilities],
      ttl: durationFromMs(record.ttlMs),
      deregisterAfter: durationFromMs(record.deregisterAfterMs),
      health: healthToProto[record.health],
      registeredAt: timestampFromMs(record.registeredAt),
      lastHeartbeatAt: timestampFromMs(record.lastHeartbeatAt),
      revision: BigInt(record.revision),
    });
    wireInstances.set(record, wire);
  }
  return wire;
}

/**
 * The inverse of instanceToWire, for restoring a backup: the spec is
 * validated again, and the registry-set fields are taken as they were.
 */
export function recordFromWire(instance: Instance, policy: LivenessPolicy): InstanceRecord {
  const spec = validateInstanceSpec(instanceFromWire(instance), policy);
  return {
    ...spec,
    health: healthFromWire("instance.health", instance.health) ?? "healthy",
    registeredAt: instance.registeredAt === undefined ? 0 : timestampMs(instance.registeredAt),
    lastHeartbeatAt: instance.lastHeartbeatAt === undefined ? 0 : timestampMs(instance.lastHeartbeatAt),
    revision: Number(instance.revision),
  };
}

/** The filter fields Discover and Watch share. */
export function filterFromWire(request: FilterSpec): FilterSpec {
  return {
    service: request.service,
    tags: request.tags,
    selector: request.selector,
    version: request.version,
    capability: request.capability,
    includeUnhealthy: request.includeUnhealthy,
  };
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
      instance: instanceToWire(event.instance),
      previousHealth: event.previous === undefined ? HealthStatus.UNSPECIFIED : healthToProto[event.previous.health],
      revision: BigInt(event.revision),
      time: timestampFromMs(event.time),
      removed,
    });
    wireEvents.set(watchEvent, wire);
  }
  return wire;
}

/** A live change usually reaches every watcher as the same one-event answer: that answer is made once. */
export function watchBatchToWire(batch: WatchBatch): WatchResponse {
  const only = batch.events.length === 1 ? batch.events[0] : undefined;
  if (only === undefined || batch.snapshot || batch.more) return newWatchResponse(batch);
  let answers = oneEventAnswers.get(only);
  if (answers === undefined) oneEventAnswers.set(only, (answers = new Map<number, WatchResponse>()));
  let answer = answers.get(batch.revision);
  if (answer === undefined) answers.set(batch.revision, (answer = newWatchResponse(batch)));
  return answer;
}

function newWatchResponse(batch: WatchBatch): WatchResponse {
  return create(WatchResponseSchema, {
    events: batch.events.map(eventToWire),
    revision: BigInt(batch.revision),
    snapshot: batch.snapshot,
    more: batch.more,
  });
}
