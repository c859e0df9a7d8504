import { toJson } from "@bufbuild/protobuf";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { StatusResponseSchema } from "../../../gen/muster/v1/registry_pb.js";
import { callRegistry, clientCommand, outputOption, print, type RegistryFlags } from "../command-kit.js";
import { colorsFor, counted, formatBytes, formatSeconds, type Colors } from "../format.js";
import type { Following, StatusResponse } from "../../../gen/muster/v1/registry_pb.js";

/** `muster status`: is the registry up, and what does it hold. */
export function statusCommand(): Command {
  return clientCommand("status", "show whether the registry is reachable, and what it holds", ["muster status", "muster status --registry http://10.0.0.5:6878 -o json"])
    .addOption(outputOption(["text", "json"], "text"))
    .action(async (flags: RegistryFlags & { output: "text" | "json" }) => {
      const status = await callRegistry(flags, (client, options) => client.status({}, options));
      if (flags.output === "json") {
        print(JSON.stringify(toJson(StatusResponseSchema, status), null, 2));
        return;
      }
      const colors = colorsFor(process.stdout);
      const uptime = status.uptime === undefined ? "-" : formatSeconds(Math.floor(durationMs(status.uptime) / 1000));
      const lines: [string, string][] = [
        ["registry", `${flags.registry} ${colors.green("(reachable)")}`],
        ["version", status.version],
        ...(status.following === undefined ? [] : [["leader", leaderLine(colors, status.following, status.revision)] as [string, string]]),
        ["uptime", uptime],
        ["revision", `${status.revision} (${historyLine(status)})`],
        ["services", String(status.services)],
        ["instances", `${status.instances} (${colors.green(`${status.healthy} healthy`)}, ${colors.yellow(`${status.degraded} degraded`)}, ${colors.red(`${status.unhealthy} unhealthy`)}; ${status.drained} drained)`],
        ["watchers", String(status.watchers)],
        ["expiry", expiryLine(colors, status)],
        ["writes", writesLine(colors, status)],
        ["data", `${status.dataDir} (${formatBytes(Number(status.dataDirBytes))})`],
        ["memory", `${formatBytes(Number(status.residentBytes))} resident`],
      ];
      print(lines.map(([key, value]) => `${key.padEnd(10)} ${value}`).join("\n"));
    });
}

/** The history and, newest first, the ones it branched from: "history X, branched from Y at 42, which branched from Z at 7". */
function historyLine(status: StatusResponse): string {
  return [`history ${status.history}`, ...status.historyForks.map((fork, i) => `${i === 0 ? "branched" : "which branched"} from ${fork.history} at ${fork.revision}`)].join(", ");
}

function leaderLine(colors: Colors, following: Following, copied: bigint): string {
  const behind = following.leaderRevision - copied;
  const where = behind > 0n ? `${behind} change${behind === 1n ? "" : "s"} behind the leader's revision ${following.leaderRevision}` : `up to date at revision ${copied}`;
  if (following.connected) return `${following.leader} ${colors.green(`(following, ${where}; writes go there)`)}`;
  return colors.red(`${following.leader} (NOT REACHED${following.lastError === "" ? "" : `: ${following.lastError}`}; serving the last copy, of revision ${copied}; writes fail until it is back)`);
}

function writesLine(colors: Colors, status: StatusResponse): string {
  const counts = `${counted(status.commits, "synced commit")}, ${counted(status.committedChanges, "change")}`;
  if (status.writeFailure === "") return `ok (${counts})`;
  const since = status.writeFailingSince === undefined ? "" : ` since ${timestampDate(status.writeFailingSince).toISOString()}`;
  return colors.red(`FAILING${since}: ${status.writeFailure}; changes are refused until the data directory takes writes again (${counts})`);
}

function expiryLine(colors: Colors, status: StatusResponse): string {
  const silent = `${status.silentInstances} of ${counted(status.instances, "instance")} silent`;
  if (status.expiryHeld) return colors.red(`HELD: ${silent}; removals paused until heartbeats return or 'muster release-expiry-hold'`);
  if (status.expiryHoldReleased) return colors.yellow(`hold released by an operator (${silent}); silent instances expire`);
  return `normal (${silent})`;
}
