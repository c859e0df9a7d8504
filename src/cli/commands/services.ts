import type { Command } from "commander";
import { HealthStatus } from "../../../gen/muster/v1/registry_pb.js";
import { callRegistry, clientCommand, outputOption, print, type RegistryFlags } from "../command-kit.js";
import { colorsFor } from "../format.js";
import { renderTable } from "../table.js";

interface ServiceCounts {
  service: string;
  instances: number;
  healthy: number;
  degraded: number;
  unhealthy: number;
  /** Of any health. */
  drained: number;
}

/** `muster services`: each service with its instance counts by health. */
export function servicesCommand(): Command {
  return clientCommand("services", "list services with their instance counts by health, and how many are drained", ["muster services", "muster services -o json"])
    .addOption(outputOption(["table", "json"], "table"))
    .action(async (flags: RegistryFlags & { output: "table" | "json" }) => {
      const found = await callRegistry(flags, (client, options) => client.discover({ includeUnhealthy: true, includeDrained: true }, options));
      const byService = new Map<string, ServiceCounts>();
      for (const instance of found.instances) {
        let counts = byService.get(instance.service);
        if (counts === undefined) {
          counts = { service: instance.service, instances: 0, healthy: 0, degraded: 0, unhealthy: 0, drained: 0 };
          byService.set(instance.service, counts);
        }
        counts.instances++;
        if (instance.health === HealthStatus.HEALTHY) counts.healthy++;
        else if (instance.health === HealthStatus.DEGRADED) counts.degraded++;
        else counts.unhealthy++;
        if (instance.drain !== undefined) counts.drained++;
      }
      const services = [...byService.values()];
      if (flags.output === "json") {
        print(JSON.stringify(services, null, 2));
        return;
      }
      if (services.length === 0) {
        process.stderr.write(`no services registered (revision ${found.revision})\n`);
        return;
      }
      const colors = colorsFor(process.stdout);
      const count = (value: number, paint: (text: string) => string) => ({ text: String(value), paint: (padded: string) => (value > 0 ? paint(padded) : padded) });
      print(
        renderTable(
          ["SERVICE", "INSTANCES", "HEALTHY", "DEGRADED", "UNHEALTHY", "DRAINED"],
          services.map((s) => [s.service, String(s.instances), count(s.healthy, colors.green), count(s.degraded, colors.yellow), count(s.unhealthy, colors.red), count(s.drained, colors.magenta)]),
        ),
      );
    });
}
