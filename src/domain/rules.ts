import { isIP } from "node:net";
// Only the parts of semver muster uses: its index loads every function it has (about 2 ms of start-up).
import Range from "semver/classes/range.js";
import parseSemver from "semver/functions/parse.js";
import { RegistryError } from "./registry-error.js";

/**
 * The syntax rules every name and value in the registry follows. Each check
 * throws a RegistryError naming the field and the rule, so a caller learns
 * exactly what to fix.
 */

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const instanceId = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const token = /^[A-Za-z0-9][A-Za-z0-9._:/=+@-]{0,127}$/;
const labelName = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const hostname = /^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$/;

/** Limits on list sizes, so one request cannot blow up memory or the log. */
export const limits = {
  tags: 64,
  labels: 64,
  capabilities: 64,
  weight: 10_000,
  selectorLength: 4096,
  versionRangeLength: 256,
  drainReasonLength: 256,
} as const;

/** True for a DNS-1123 label: lower-case letters, digits and '-', at most 63, a letter or digit at each end. */
export function isDnsLabel(value: string): boolean {
  return dnsLabel.test(value);
}

/** True for a valid service name: a DNS-1123 label. */
export function isServiceName(value: string): boolean {
  return isDnsLabel(value);
}

/** Service names are DNS-1123 labels, so that every service can be a DNS name (`dns-answers.ts`). */
export function checkServiceName(field: string, value: string): void {
  if (value === "") throw RegistryError.invalid(field, "is required");
  if (!dnsLabel.test(value)) {
    throw RegistryError.invalid(
      field,
      "must be a DNS-1123 label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit",
      value,
    );
  }
}

/** Instance ids: short, printable, and safe in a `service/id` key. */
export function checkInstanceId(field: string, value: string): void {
  if (value === "") throw RegistryError.invalid(field, "is required");
  if (!instanceId.test(value)) {
    throw RegistryError.invalid(
      field,
      "must be 1-128 letters, digits or '.', '_', ':', '@', '-', starting with a letter or digit",
      value,
    );
  }
}

/** Free text a person reads in a table: bounded, and without control characters that would break the line or drive the terminal. */
export function checkDrainReason(field: string, value: string): void {
  if (value.length > limits.drainReasonLength && Array.from(value).length > limits.drainReasonLength) {
    throw RegistryError.invalid(field, `must be at most ${limits.drainReasonLength} characters`, value);
  }
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index);
    if (code < 0x20 || (code >= 0x7f && code < 0xa0)) throw RegistryError.invalid(field, "must not contain control characters such as newlines", value);
  }
}

/** Tags and capabilities share one rule. */
export function checkToken(field: string, value: string): void {
  if (!token.test(value)) {
    throw RegistryError.invalid(
      field,
      "must be 1-128 letters, digits or '.', '_', ':', '/', '=', '+', '@', '-', starting with a letter or digit",
      value,
    );
  }
}

/** Label keys as Kubernetes defines them: an optional DNS prefix, '/', a name. */
export function checkLabelKey(field: string, key: string): void {
  const slash = key.indexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  const prefixOk = prefix === undefined || (prefix.length <= 253 && dnsSubdomain.test(prefix));
  if (!prefixOk || !labelName.test(name)) {
    throw RegistryError.invalid(
      field,
      "label keys must be a name of 1-63 letters, digits, '-', '_' or '.' starting and ending with a letter or digit, with an optional DNS subdomain prefix and '/'",
      key,
    );
  }
}

/** Label values as Kubernetes defines them, so selectors read the same in both. */
export function checkLabelValue(field: string, value: string): void {
  if (!labelValue.test(value)) {
    throw RegistryError.invalid(
      field,
      "label values must be empty or 1-63 letters, digits, '-', '_' or '.' starting and ending with a letter or digit",
      value,
    );
  }
}

/** host:port, with a DNS name, an IPv4 address or a bracketed IPv6 address. */
export function checkAddress(field: string, value: string): void {
  if (value === "") throw RegistryError.invalid(field, "is required");
  const colon = value.lastIndexOf(":");
  const host = colon === -1 ? "" : value.slice(0, colon);
  const port = colon === -1 ? "" : value.slice(colon + 1);
  const hostOk = host.startsWith("[") && host.endsWith("]")
    ? isIP(host.slice(1, -1)) === 6
    : host.length <= 253 && (isIP(host) === 4 || (hostname.test(host) && !/^[0-9.]+$/.test(host)));
  const portNumber = /^[0-9]{1,5}$/.test(port) ? Number(port) : 0;
  if (!hostOk || portNumber < 1 || portNumber > 65535) {
    throw RegistryError.invalid(
      field,
      "must be host:port with a DNS name, IPv4 address or [IPv6] address and a port from 1 to 65535",
      value,
    );
  }
}

/** Empty, or a semantic version exactly as written, so version ranges can match it. */
export function checkVersion(field: string, value: string): void {
  // semver's parse tolerates a leading 'v' or '=' and surrounding space; muster stores versions exactly.
  if (value !== "" && (parseSemver(value) === null || !/^[0-9]/.test(value) || value.trim() !== value)) {
    throw RegistryError.invalid(field, "must be a semantic version such as 1.4.2 (no leading 'v')", value);
  }
}

/** Parses a semver range once, so matching many instances is cheap. */
export function parseVersionRange(field: string, value: string): Range | undefined {
  if (value === "") return undefined;
  if (value.length > limits.versionRangeLength) {
    throw RegistryError.invalid(field, `must be at most ${limits.versionRangeLength} characters`);
  }
  try {
    return new Range(value);
  } catch {
    throw RegistryError.invalid(field, "must be a semantic version range such as '>=1.2 <2' or '^1.4'", value);
  }
}

/** At most `max` entries (see `limits`). */
export function checkListSize(field: string, list: readonly unknown[], max: number): void {
  if (list.length > max) throw RegistryError.invalid(field, `must have at most ${max} entries (got ${list.length})`);
}

/** No entry twice: a repeated tag or capability is a caller's mistake, not a set. */
export function checkNoDuplicates(field: string, list: readonly string[]): void {
  const seen = new Set<string>();
  for (const item of list) {
    if (seen.has(item)) throw RegistryError.invalid(field, "must not repeat an entry", item);
    seen.add(item);
  }
}

/** Durations in whole milliseconds within [minMs, maxMs]. */
export function checkDuration(field: string, ms: number, minMs: number, maxMs: number): void {
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs) {
    throw RegistryError.invalid(field, `must be between ${minMs / 1000}s and ${maxMs / 1000}s`, Number.isFinite(ms) ? `${ms / 1000}s` : "an invalid duration");
  }
}
