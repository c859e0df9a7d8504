/**
 * Stable codes for the ways a registry call can fail. The server maps them
 * onto RPC status codes; nothing in the domain knows about transports.
 */
export type RegistryErrorCode =
  | "invalid-argument"
  | "not-found"
  | "unavailable"
  | "resource-exhausted"
  | "failed-precondition";

/**
 * An error a caller can act on. For invalid input, `field` names the field
 * (as the API spells it, e.g. `instance.address`) and the message states the
 * rule that was broken.
 */
export class RegistryError extends Error {
  override readonly name = "RegistryError";

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }

  /** A value broke a rule: `field: rule (got value)`. Nothing was stored. */
  static invalid(field: string, rule: string, value?: unknown): RegistryError {
    const got = value === undefined ? "" : ` (got ${describe(value)})`;
    return new RegistryError("invalid-argument", `${field}: ${rule}${got}`, field);
  }

  /** No such instance. `remedy` ends the message with what it means for the call: a heartbeat should register again; a leave has nothing left to do. */
  static notFound(service: string, id: string, remedy: string): RegistryError {
    return new RegistryError("not-found", `instance ${service}/${id} is not registered (unknown or expired): ${remedy}`);
  }
}

const longestShownValue = 64;

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > longestShownValue ? `${text.slice(0, longestShownValue)}...` : text;
}
