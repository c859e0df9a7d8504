import { randomUUID } from "node:crypto";
import type { InstanceSpec } from "./instance.js";
import { RegistryError } from "./registry-error.js";
import {
  checkAddress,
  checkDuration,
  checkInstanceId,
  checkLabelKey,
  checkLabelValue,
  checkListSize,
  checkNoDuplicates,
  checkServiceName,
  checkToken,
  checkVersion,
  limits,
} from "./rules.js";
import { pooled, pooledLabels, pooledList } from "./string-pool.js";

/**
 * A Register request as the agent sent it. Durations are undefined when the
 * agent left them out, and then take the registry's defaults.
 */
export interface InstanceInput extends Omit<InstanceSpec, "ttlMs" | "deregisterAfterMs"> {
  readonly ttlMs: number | undefined;
  readonly deregisterAfterMs: number | undefined;
}

/** Bounds and defaults for an instance's liveness durations. */
export interface LivenessPolicy {
  /** Default 10s. */
  readonly defaultTtlMs: number;
  /** Default 60s. */
  readonly defaultDeregisterAfterMs: number;
  /** Default 1s. */
  readonly minDurationMs: number;
  /** Default 1h. */
  readonly maxDurationMs: number;
}

/** A 10 s ttl, removal after 60 s UNHEALTHY without a heartbeat, and durations from 1 s to 1 h. */
export const defaultLivenessPolicy: LivenessPolicy = {
  defaultTtlMs: 10_000,
  defaultDeregisterAfterMs: 60_000,
  minDurationMs: 1_000,
  maxDurationMs: 3_600_000,
};

/**
 * Checks every field of a registration and fills in defaults: a generated
 * id, weight 1, and the policy's durations. Throws INVALID_ARGUMENT naming
 * the first field that breaks a rule.
 */
export function validateInstanceSpec(input: InstanceInput | undefined, policy: LivenessPolicy): InstanceSpec {
  if (input === undefined) throw RegistryError.invalid("instance", "is required");
  checkServiceName("instance.service", input.service);
  const id = input.id === "" ? randomUUID() : input.id;
  checkInstanceId("instance.id", id);
  checkAddress("instance.address", input.address);
  checkVersion("instance.version", input.version);
  checkTokens("instance.tags", input.tags, limits.tags);
  checkTokens("instance.capabilities", input.capabilities, limits.capabilities);
  const labelEntries = Object.entries(input.labels);
  checkListSize("instance.labels", labelEntries, limits.labels);
  for (const [key, value] of labelEntries) {
    checkLabelKey("instance.labels", key);
    checkLabelValue(`instance.labels[${JSON.stringify(key)}]`, value);
  }
  if (input.zone !== "") checkLabelValue("instance.zone", input.zone);
  if (!Number.isInteger(input.weight) || input.weight < 0 || input.weight > limits.weight) {
    throw RegistryError.invalid("instance.weight", `must be from 0 (the default, 1) to ${limits.weight}`, input.weight);
  }
  const ttlMs = input.ttlMs ?? policy.defaultTtlMs;
  checkDuration("instance.ttl", ttlMs, policy.minDurationMs, policy.maxDurationMs);
  const deregisterAfterMs = input.deregisterAfterMs ?? policy.defaultDeregisterAfterMs;
  checkDuration("instance.deregister_after", deregisterAfterMs, policy.minDurationMs, policy.maxDurationMs);
  return {
    service: pooled(input.service),
    id,
    address: input.address,
    version: pooled(input.version),
    tags: pooledList(input.tags),
    labels: pooledLabels(input.labels),
    zone: pooled(input.zone),
    weight: input.weight === 0 ? 1 : input.weight,
    capabilities: pooledList(input.capabilities),
    ttlMs: Math.floor(ttlMs),
    deregisterAfterMs: Math.floor(deregisterAfterMs),
  };
}

function checkTokens(field: string, values: readonly string[], max: number): void {
  checkListSize(field, values, max);
  values.forEach((value, index) => checkToken(`${field}[${index}]`, value));
  checkNoDuplicates(field, values);
}
