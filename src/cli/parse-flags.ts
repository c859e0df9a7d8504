import { InvalidArgumentError } from "commander";
import { limits } from "../domain/rules.js";

/*
 * Flag parsers for commander: each throws InvalidArgumentError, which
 * commander prints as one line naming the flag and the bad value.
 */

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "10s", "1.5m", "500ms", "1h" to milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  const unit = match?.[2];
  if (match?.[1] === undefined || unit === undefined) throw new InvalidArgumentError("must be a duration such as 500ms, 10s, 1m or 1h");
  return Math.round(Number(match[1]) * (units[unit] ?? 1));
}

/** A non-negative whole number, such as a revision. */
export function parseWholeNumber(text: string): bigint {
  if (!/^\d{1,19}$/.test(text)) throw new InvalidArgumentError("must be a whole number such as 42");
  return BigInt(text);
}

/** An instance's weight, 0 to `limits.weight` (10,000), checked here so a typo fails before any call. */
export function parseWeight(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > limits.weight) throw new InvalidArgumentError(`must be a whole number from 0 to ${limits.weight}`);
  return Number(text);
}

/** Collects a repeatable flag into a list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Collects repeatable k=v flags into a map. */
export function collectLabel(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const equals = value.indexOf("=");
  if (equals <= 0) throw new InvalidArgumentError("must be key=value, such as env=prod");
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    if (!(choices as readonly string[]).includes(text)) throw new InvalidArgumentError(`must be one of ${choices.join(", ")}`);
    return text as T;
  };
}
