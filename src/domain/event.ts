import type { Health, InstanceRecord } from "./instance.js";

/** What can happen to an instance. */
export const eventTypes = ["registered", "updated", "health-changed", "drain-changed", "deregistered", "expired"] as const;

/** One of `eventTypes`. */
export type EventType = (typeof eventTypes)[number];

/**
 * One change to the registry. Every change gets the next value of the one
 * global revision counter, so the event log is gap-free and totally ordered.
 */
export interface RegistryEvent {
  readonly type: EventType;
  /** The instance after the change; for deregistered and expired, as it was. */
  readonly instance: InstanceRecord;
  /** The instance before the change; absent for registered. */
  readonly previous: InstanceRecord | undefined;
  readonly revision: number;
  /** Wall-clock milliseconds since the epoch. */
  readonly time: number;
}

/** True for the kinds of change that remove their instance from the registry. */
export function removesInstance(type: EventType): type is "deregistered" | "expired" {
  return type === "deregistered" || type === "expired";
}

/** True when the event removes its instance from the registry. */
export function isRemoval(event: RegistryEvent): boolean {
  return removesInstance(event.type);
}

/** The health before the change, or undefined for a new registration. */
export function previousHealth(event: RegistryEvent): Health | undefined {
  return event.previous?.health;
}
