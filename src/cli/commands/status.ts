import { toJson } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { StatusResponseSchema } from "../../../gen/muster/v1/registry_pb.js";
import { callRegistry, clientCommand, outputOption, print, type RegistryFlags } from "../command-kit.js";
import { colorsFor, formatBytes, formatSeconds } from "../format.js";

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
        ["uptime", uptime],
        ["revision", String(status.revision)],
        ["services", String(status.services)],
        ["instances", `${status.instances} (${colors.green(`${status.healthy} healthy`)}, ${colors.yellow(`${status.degraded} degraded`)}, ${colors.red(`${status.unhealthy} unhealthy`)})`],
        ["watchers", String(status.watchers)],
        ["data", `${status.dataDir} (${formatBytes(Number(status.dataDirBytes))})`],
      ];
      print(lines.map(([key, value]) => `${key.padEnd(10)} ${value}`).join("\n"));
    });
}
