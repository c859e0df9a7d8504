import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { createColors } from "picocolors";
import { HealthStatus } from "../../gen/muster/v1/registry_pb.js";

/** Colours only for a terminal that wants them (NO_COLOR and FORCE_COLOR are honoured). */
export function colorsFor(stream: NodeJS.WriteStream): ReturnType<typeof createColors> {
  const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== "0";
  return createColors(forced || (stream.isTTY && process.env.NO_COLOR === undefined));
}

/** picocolors' functions, real or no-ops, as `colorsFor` chose them. */
export type Colors = ReturnType<typeof createColors>;

/** HEALTHY, DEGRADED, UNHEALTHY: the enum name without its prefix. */
export function healthName(health: HealthStatus): string {
  return health === HealthStatus.UNSPECIFIED ? "-" : HealthStatus[health];
}

/** `text` (default the health's name) in the health's colour: green, yellow or red; UNSPECIFIED stays plain. */
export function paintHealth(colors: Colors, health: HealthStatus, text = healthName(health)): string {
  switch (health) {
    case HealthStatus.HEALTHY:
      return colors.green(text);
    case HealthStatus.DEGRADED:
      return colors.yellow(text);
    case HealthStatus.UNHEALTHY:
      return colors.red(text);
    default:
      return text;
  }
}

/** "3s ago", "5m ago", "2h ago", "4d ago", as kubectl shows ages. */
export function relativeTime(timestamp: Timestamp | undefined, now = Date.now()): string {
  if (timestamp === undefined) return "-";
  const seconds = Math.max(0, Math.round((now - timestampMs(timestamp)) / 1000));
  return `${formatSeconds(seconds)} ago`;
}

/** 59s, 3m12s, 2h5m, 4d3h. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${pad(Math.floor(seconds / 60) % 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor(seconds / 3600) % 24}h`;
}

function pad(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/** 1.2 MiB, 512 B. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit] ?? ""}`;
}

/**
 * "1 instance", "3 instances", "0 instances": a count with its noun, so that
 * a single thing is not reported in the plural. `plural` defaults to the
 * noun with an "s".
 */
export function counted(count: number | bigint, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 || count === 1n ? noun : plural}`;
}
