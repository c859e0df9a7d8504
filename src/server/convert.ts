import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs, timestampMs, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { FilterSpec } from "../domain/filter.js";
import { makeRecord, type Drain, type Health, type InstanceRecord } from "../domain/instance.js";
import { validateInstanceSpec, type InstanceInput, type LivenessPolicy } from "../domain/instance-spec.js";
import { RegistryError } from "../domain/registry-error.js";
import { checkDrainReason } from "../domain/rules.js";
import type { Discovered } from "../domain/registry-types.js";
import { DiscoverResponseSchema, DrainSchema, HealthStatus, InstanceSchema, type DiscoverResponse, type Drain as WireDrain, type Instance } from "../../gen/muster/v1/registry_pb.js";

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

/** The wire enum of a health the registry holds (never UNSPECIFIED). */
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

/** A registration as the domain validates it: the caller's fields only, durations in milliseconds; the registry-set fields are ignored. */
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

/** Records are immutable, so each shared one is converted once however often it is sent. */
const wireInstances = new WeakMap<InstanceRecord, Instance>();

/**
 * The wire Instance of a record that Discover answers and watch events
 * share: made once and kept as long as the record lives (every instance a
 * Discover or a watcher has seen has one).
 */
export function sharedInstanceToWire(record: InstanceRecord): Instance {
  let wire = wireInstances.get(record);
  if (wire === undefined) {
    wire = instanceToWire(record);
    wireInstances.set(record, wire);
  }
  return wire;
}

/**
 * A record as a wire Instance, made anew; a Register answer goes to one
 * caller, so its Instance is not worth keeping. It shares what it can: the
 * record's own tags, labels and capabilities, which neither side changes,
 * and one Duration object per common ttl. About 390 bytes less per kept
 * instance.
 */
export function instanceToWire(record: InstanceRecord): Instance {
  // A literal of every field: create() fills the same fields by reflection, at several times the cost.
  return {
    $typeName: InstanceSchema.typeName,
    service: record.service,
    id: record.id,
    address: record.address,
    version: record.version,
    tags: record.tags as string[],
    labels: record.labels,
    zone: record.zone,
    weight: record.weight,
    capabilities: record.capabilities as string[],
    ttl: sharedDuration(record.ttlMs),
    deregisterAfter: sharedDuration(record.deregisterAfterMs),
    health: healthToProto[record.health],
    registeredAt: sharedTimestamp(record.registeredAt),
    lastHeartbeatAt: sharedTimestamp(record.lastHeartbeatAt),
    revision: BigInt(record.revision),
    drain: record.drain === undefined ? undefined : drainToWire(record.drain),
  };
}

function drainToWire(drain: Drain): WireDrain {
  return { $typeName: DrainSchema.typeName, reason: drain.reason, since: timestampFromMs(drain.since) };
}

/** Durations by milliseconds, for the few values most instances use; past the limit each gets its own. */
const durations = new Map<number, Duration>();
const sharedDurationsLimit = 64;

function sharedDuration(ms: number): Duration {
  let duration = durations.get(ms);
  if (duration === undefined) {
    duration = durationFromMs(ms);
    if (durations.size < sharedDurationsLimit) durations.set(ms, duration);
  }
  return duration;
}

/**
 * The last Timestamp made, for the next one of the same millisecond: a new
 * record's registeredAt and lastHeartbeatAt are the same instant, and a
 * burst converts many records of one millisecond in a row.
 */
let lastTimestamp = { ms: 0, timestamp: timestampFromMs(0) };

function sharedTimestamp(ms: number): Timestamp {
  if (lastTimestamp.ms !== ms) lastTimestamp = { ms, timestamp: timestampFromMs(ms) };
  return lastTimestamp.timestamp;
}

/** The registry reuses an answer while it is exact, so each is converted (and, on the fast path, encoded) once. */
const wireAnswers = new WeakMap<Discovered, DiscoverResponse>();

/** Discover's answer on the wire, made once per answer object (see `wireAnswers`). */
export function discoveredToWire(discovered: Discovered): DiscoverResponse {
  let wire = wireAnswers.get(discovered);
  if (wire === undefined) {
    wire = create(DiscoverResponseSchema, { instances: discovered.instances.map(sharedInstanceToWire), revision: BigInt(discovered.revision) });
    wireAnswers.set(discovered, wire);
  }
  return wire;
}

/**
 * The inverse of instanceToWire, for restoring a backup: the spec is
 * validated again, and the registry-set fields are taken as they were.
 */
export function recordFromWire(instance: Instance, policy: LivenessPolicy): InstanceRecord {
  const spec = validateInstanceSpec(instanceFromWire(instance), policy);
  return makeRecord(spec, {
    health: healthFromWire("instance.health", instance.health) ?? "healthy",
    registeredAt: instance.registeredAt === undefined ? 0 : timestampMs(instance.registeredAt),
    lastHeartbeatAt: instance.lastHeartbeatAt === undefined ? 0 : timestampMs(instance.lastHeartbeatAt),
    revision: Number(instance.revision),
    drain: instance.drain === undefined ? undefined : drainFromWire(instance.drain),
  });
}

function drainFromWire(drain: WireDrain): Drain {
  checkDrainReason("instance.drain.reason", drain.reason);
  return { reason: drain.reason, since: drain.since === undefined ? 0 : timestampMs(drain.since) };
}

/** The filter fields Discover and Watch share. */
export function filterFromWire(request: FilterSpec): FilterSpec {
  return {
    service: request.service,
    tags: request.tags,
    selector: request.selector,
    version: request.version,
    capability: request.capability,
    zone: request.zone,
    includeUnhealthy: request.includeUnhealthy,
    includeDrained: request.includeDrained,
  };
}
