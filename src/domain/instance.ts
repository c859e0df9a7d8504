/**
 * An instance's health as the registry sees it. HEALTHY and DEGRADED
 * instances are discovered by default; UNHEALTHY ones only on request.
 */
export type Health = "healthy" | "degraded" | "unhealthy";

/**
 * What an agent says about itself on Register. Every field has been
 * validated and normalized by `validateInstanceSpec`.
 */
export interface InstanceSpec {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly version: string;
  readonly tags: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly zone: string;
  readonly weight: number;
  readonly capabilities: readonly string[];
  readonly ttlMs: number;
  readonly deregisterAfterMs: number;
}

/**
 * Why and since when an operator took an instance out of discovery. It stays
 * registered and heartbeating; only Undrain, Deregister or expiry end it.
 */
export interface Drain {
  readonly reason: string;
  /** Wall-clock milliseconds of the first drain; a new reason keeps it. */
  readonly since: number;
}

/**
 * One registered instance: its spec plus what the registry keeps about it.
 * Records are immutable; every change makes a new one, so events can share
 * them safely.
 */
export interface InstanceRecord extends InstanceSpec {
  readonly health: Health;
  /** Wall-clock milliseconds since the epoch. */
  readonly registeredAt: number;
  /** Wall-clock milliseconds since the epoch. */
  readonly lastHeartbeatAt: number;
  /** The revision of the last change to this instance. */
  readonly revision: number;
  /** Set while drained. Absent, not undefined, in records loaded from disk: JSON leaves undefined out. */
  readonly drain?: Drain | undefined;
}

/** What the registry keeps about an instance beside its spec. */
export type RecordState = Pick<InstanceRecord, "health" | "registeredAt" | "lastHeartbeatAt" | "revision" | "drain">;

/**
 * Makes a record, field by field in one order, so that every record the
 * registry makes has one shape. Object spread that adds fields
 * (`{ ...spec, health }`) takes V8's slow path: about 4 us of Register's
 * 55 us on the main thread (BENCHMARKS.md, Register).
 */
export function makeRecord(spec: InstanceSpec, state: RecordState): InstanceRecord {
  return {
    service: spec.service,
    id: spec.id,
    address: spec.address,
    version: spec.version,
    tags: spec.tags,
    labels: spec.labels,
    zone: spec.zone,
    weight: spec.weight,
    capabilities: spec.capabilities,
    ttlMs: spec.ttlMs,
    deregisterAfterMs: spec.deregisterAfterMs,
    health: state.health,
    registeredAt: state.registeredAt,
    lastHeartbeatAt: state.lastHeartbeatAt,
    revision: state.revision,
    drain: state.drain,
  };
}

/**
 * `record` with some of its state changed, as a new record (records are
 * immutable). `drain: undefined` undrains; leaving `drain` out keeps it.
 */
export function updateRecord(record: InstanceRecord, changes: Partial<Omit<RecordState, "registeredAt">>): InstanceRecord {
  return makeRecord(record, {
    health: changes.health ?? record.health,
    registeredAt: record.registeredAt,
    lastHeartbeatAt: changes.lastHeartbeatAt ?? record.lastHeartbeatAt,
    revision: changes.revision ?? record.revision,
    drain: "drain" in changes ? changes.drain : record.drain,
  });
}

/** The identity of an instance: unique per (service, id). */
export function instanceKey(service: string, id: string): string {
  return `${service}/${id}`;
}

/**
 * True when two specs describe the same registration, so registering again
 * changes nothing but liveness.
 */
export function sameSpec(a: InstanceSpec, b: InstanceSpec): boolean {
  return (
    a.address === b.address &&
    a.version === b.version &&
    a.zone === b.zone &&
    a.weight === b.weight &&
    a.ttlMs === b.ttlMs &&
    a.deregisterAfterMs === b.deregisterAfterMs &&
    sameList(a.tags, b.tags) &&
    sameList(a.capabilities, b.capabilities) &&
    sameLabels(a.labels, b.labels)
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

/** The inverse of `instanceKey`; service names never contain '/'. */
export function parseInstanceKey(key: string): { service: string; id: string } {
  const slash = key.indexOf("/");
  return { service: key.slice(0, slash), id: key.slice(slash + 1) };
}
