import { toJson } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { InstanceSchema, type Instance } from "../../../gen/muster/v1/registry_pb.js";
import { callRegistry, clientCommand, filterFrom, outputOption, print, withFilterFlags, type FilterFlags, type RegistryFlags } from "../command-kit.js";
import { colorsFor, healthName, paintHealth, relativeTime } from "../format.js";
import { renderTable, type Cell } from "../table.js";

type Format = "table" | "wide" | "json";

/** `muster ls [SERVICE]`: the matching instances, as a table or JSON. */
export function lsCommand(): Command {
  return withFilterFlags(
    clientCommand("ls", "list instances (HEALTHY and DEGRADED, not drained, unless --all)", [
      "muster ls",
      "muster ls payments --selector 'env=prod' --version '>=1.2 <2'",
      "muster ls --all -o wide",
      "muster ls -o json | jq '.[].address'",
    ]).argument("[service]", "only this service"),
  )
    .addOption(outputOption<Format>(["table", "wide", "json"], "table"))
    .action(async (service: string | undefined, flags: FilterFlags & RegistryFlags & { output: Format }) => {
      const found = await callRegistry(flags, (client, options) => client.discover(filterFrom(service, flags), options));
      if (flags.output === "json") {
        print(JSON.stringify(found.instances.map((instance) => toJson(InstanceSchema, instance)), null, 2));
        return;
      }
      if (found.instances.length === 0) {
        process.stderr.write(`no instances match (revision ${found.revision})${flags.all === true ? "" : "; --all includes UNHEALTHY and drained ones"}\n`);
        return;
      }
      print(instanceTable(found.instances, flags.output === "wide"));
    });
}

function instanceTable(instances: readonly Instance[], wide: boolean): string {
  const colors = colorsFor(process.stdout);
  const headers = ["SERVICE", "ID", "ADDRESS", "VERSION", "HEALTH", "LAST HEARTBEAT", "TAGS"];
  if (wide) headers.push("ZONE", "WEIGHT", "LABELS", "CAPABILITIES", "REVISION", "DRAIN REASON");
  const now = Date.now();
  const rows = instances.map((instance) => {
    const row: Cell[] = [
      instance.service,
      instance.id,
      instance.address,
      instance.version || "-",
      { text: healthName(instance.health) + (instance.drain === undefined ? "" : " (drained)"), paint: (padded) => paintHealth(colors, instance.health, padded) },
      relativeTime(instance.lastHeartbeatAt, now),
      instance.tags.join(",") || "-",
    ];
    if (wide) {
      const labels = Object.entries(instance.labels).map(([key, value]) => `${key}=${value}`);
      row.push(instance.zone || "-", String(instance.weight), labels.join(",") || "-", instance.capabilities.join(",") || "-", String(instance.revision), instance.drain?.reason || "-");
    }
    return row;
  });
  return renderTable(headers, rows);
}
