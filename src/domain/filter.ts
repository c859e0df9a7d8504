import type Range from "semver/classes/range.js";
import type { InstanceRecord } from "./instance.js";
import type { IndexHint } from "./instance-index.js";
import { parseSelector, selectorMatches, type Selector } from "./selector.js";
import { RegistryError } from "./registry-error.js";
import { checkLabelValue, checkServiceName, checkToken, checkListSize, limits, parseVersionRange } from "./rules.js";

/** What Discover and Watch ask for. Empty fields match everything. */
export interface FilterSpec {
  /** Empty: every service. */
  readonly service: string;
  /** All of these tags must be present. */
  readonly tags: readonly string[];
  /** Kubernetes label-selector syntax over labels. */
  readonly selector: string;
  /** A semver range; instances without a version never match a range. */
  readonly version: string;
  readonly capability: string;
  /** Empty: every zone. */
  readonly zone: string;
  /** Default false: only HEALTHY and DEGRADED instances match. */
  readonly includeUnhealthy: boolean;
  /** Default false: drained instances do not match. */
  readonly includeDrained: boolean;
}

/** A filter every instance matches, whatever its health or drain; spread it and set what narrows. */
export const everyInstance: FilterSpec = { service: "", tags: [], selector: "", version: "", capability: "", zone: "", includeUnhealthy: true, includeDrained: true };

/**
 * A validated, pre-parsed filter, cheap to apply to many instances. As an
 * IndexHint it tells the index where its matches can be.
 */
export interface Filter extends IndexHint {
  matches(instance: InstanceRecord): boolean;
}

/** Validates a filter and parses its selector and version range once. */
export function compileFilter(spec: FilterSpec): Filter {
  if (spec.service !== "") checkServiceName("service", spec.service);
  checkListSize("tags", spec.tags, limits.tags);
  spec.tags.forEach((tag, index) => checkToken(`tags[${index}]`, tag));
  if (spec.selector.length > limits.selectorLength) {
    throw RegistryError.invalid("selector", `must be at most ${limits.selectorLength} characters`);
  }
  const selector = parseSelector("selector", spec.selector);
  const range = parseVersionRange("version", spec.version);
  if (spec.capability !== "") checkToken("capability", spec.capability);
  if (spec.zone !== "") checkLabelValue("zone", spec.zone);
  return new CompiledFilter(spec, selector, range);
}

class CompiledFilter implements Filter {
  readonly service: string | undefined;
  readonly labels: readonly (readonly [string, ReadonlySet<string>])[];
  readonly tags: readonly string[];

  constructor(
    private readonly spec: FilterSpec,
    private readonly selector: Selector,
    private readonly range: Range | undefined,
  ) {
    this.service = spec.service === "" ? undefined : spec.service;
    this.labels = selector.flatMap((requirement) => (requirement.op === "in" ? [[requirement.key, requirement.values] as const] : []));
    this.tags = spec.tags;
  }

  matches(instance: InstanceRecord): boolean {
    const { spec, range } = this;
    return (
      (this.service === undefined || instance.service === this.service) &&
      (spec.includeUnhealthy || instance.health !== "unhealthy") &&
      (spec.includeDrained || instance.drain === undefined) &&
      spec.tags.every((tag) => instance.tags.includes(tag)) &&
      (spec.capability === "" || instance.capabilities.includes(spec.capability)) &&
      (spec.zone === "" || instance.zone === spec.zone) &&
      (range === undefined || (instance.version !== "" && range.test(instance.version))) &&
      selectorMatches(this.selector, instance.labels)
    );
  }
}
