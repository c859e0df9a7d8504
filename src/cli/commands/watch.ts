import { toJson } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { EventSchema, EventType, HealthStatus, InstanceHeartbeatSchema, type Event, type InstanceHeartbeat } from "../../../gen/muster/v1/registry_pb.js";
import { RegistryWatcher } from "../../client/watcher.js";
import { clientCommand, filterFrom, outputOption, print, registryClient, withFilterFlags, type FilterFlags, type RegistryFlags } from "../command-kit.js";
import { explainCallError } from "../cli-error.js";
import { colorsFor, counted, paintHealth, type Colors } from "../format.js";
import { parseWholeNumber } from "../parse-flags.js";

type Format = "text" | "json";

/**
 * `muster watch [SERVICE]`: live events, one line each, resuming by itself
 * from the last revision if the registry restarts.
 */
export function watchCommand(): Command {
  return withFilterFlags(
    clientCommand("watch", "print changes as they happen (text on a terminal, newline-delimited JSON otherwise)", [
      "muster watch",
      "muster watch payments --all",
      "muster watch payments --heartbeats",
      "muster watch --since 1200 -o json | jq -c 'select(.type == \"EVENT_TYPE_EXPIRED\")'",
    ]).argument("[service]", "only this service"),
  )
    .option("--since <revision>", "start after this revision instead of with the current state", parseWholeNumber)
    .option("--heartbeats", "also print heartbeats that change nothing: once a second, each instance's last")
    .addOption(outputOption<Format>(["text", "json"]))
    .action(async (service: string | undefined, flags: FilterFlags & RegistryFlags & { since?: bigint; heartbeats?: boolean; output?: Format }) => {
      const format = flags.output ?? (process.stdout.isTTY ? "text" : "json");
      const colors = colorsFor(process.stdout);
      const watcher = new RegistryWatcher(registryClient(flags), { ...filterFrom(service, flags), includeHeartbeats: flags.heartbeats === true }, {
        sinceRevision: flags.since ?? 0n,
        onRetry: (error, delayMs) => {
          process.stderr.write(`muster: ${explainCallError(error, flags.registry).message}; resuming from revision ${watcher.revision} in ${(delayMs / 1000).toFixed(1)}s\n`);
        },
      });
      const stop = () => watcher.close();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      // A replay the registry cannot give comes back as a snapshot; whoever asked for one must not take it for the changes.
      let replayAsked = flags.since !== undefined && flags.since > 0n;
      try {
        for await (const update of watcher) {
          if (replayAsked && update.snapshot) {
            process.stderr.write(`muster: the changes after revision ${flags.since} cannot be replayed (the registry no longer keeps them, counts in another history, or has not reached that revision): starting from its current state at revision ${update.revision}\n`);
          }
          replayAsked = false;
          for (const event of update.events) print(format === "json" ? eventJson(event, update.snapshot) : eventLine(colors, event, update.snapshot));
          // On a terminal, an empty or quiet start would otherwise look like a hung command.
          if (update.snapshot && format === "text") process.stderr.write(`${colors.dim(`${counted(update.events.length, "instance")} now (revision ${update.revision}); watching for changes`)}\n`);
          for (const heartbeat of update.heartbeats) print(format === "json" ? heartbeatJson(heartbeat) : heartbeatLine(colors, heartbeat));
        }
      } catch (error) {
        throw explainCallError(error, flags.registry);
      }
    });
}

function eventJson(event: Event, snapshot: boolean): string {
  return JSON.stringify({ ...(toJson(EventSchema, event) as object), snapshot });
}

/** A heartbeat line: the instance's fields as InstanceHeartbeat's JSON, marked so that `jq 'select(.heartbeat)'` finds it. */
function heartbeatJson(heartbeat: InstanceHeartbeat): string {
  return JSON.stringify({ ...(toJson(InstanceHeartbeatSchema, heartbeat) as object), heartbeat: true });
}

function heartbeatLine(colors: Colors, heartbeat: InstanceHeartbeat): string {
  return `${colors.dim(clockTime(heartbeat.at))}  ${"HEARTBEAT".padEnd(14)}  ${heartbeat.service}/${heartbeat.id}`;
}

function clockTime(time: Event["time"]): string {
  return time === undefined ? "--:--:--" : new Date(timestampMs(time)).toLocaleTimeString("en-GB", { hour12: false });
}

function eventLine(colors: Colors, event: Event, snapshot: boolean): string {
  const instance = event.instance;
  const time = clockTime(event.time);
  const type = snapshot ? "CURRENT" : (EventType[event.type] as string | undefined) ?? String(event.type);
  const health = instance?.health ?? HealthStatus.UNSPECIFIED;
  const change = snapshot || event.previousHealth === HealthStatus.UNSPECIFIED || event.previousHealth === health
    ? paintHealth(colors, health)
    : `${paintHealth(colors, event.previousHealth)} -> ${paintHealth(colors, health)}`;
  const name = `${instance?.service ?? "?"}/${instance?.id ?? "?"}`;
  const drain = instance?.drain === undefined ? "" : ` drained${instance.drain.reason === "" ? "" : `: ${instance.drain.reason}`}`;
  const undrained = event.type === EventType.DRAIN_CHANGED && drain === "" ? " undrained" : "";
  const gone = event.removed ? colors.dim(" (left the view)") : "";
  return `${colors.dim(time)}  ${type.padEnd(14)}  ${name}  ${change}${drain}${undrained}  ${colors.dim(`rev ${event.revision}`)}${gone}`;
}

