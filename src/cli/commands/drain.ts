import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { callRegistry, clientCommand, print, type RegistryFlags } from "../command-kit.js";

/** `muster drain SERVICE ID`: takes one instance out of discovery without stopping it. */
export function drainCommand(): Command {
  return clientCommand("drain", "take an instance out of discovery without stopping it, until 'muster undrain'", [
    "muster drain payments p-1 --reason 'debugging a memory leak'",
    "muster ls payments --all    # drained instances show as HEALTHY (drained)",
  ])
    .argument("<service>", "the instance's service")
    .argument("<id>", "the instance's id")
    .option("--reason <text>", "why, for whoever sees it in 'muster ls' (at most 256 characters)", "")
    .action(async (service: string, id: string, flags: RegistryFlags & { reason: string }) => {
      const { instance } = await callRegistry(flags, (client, options) => client.drain({ service, id, reason: flags.reason }, options));
      const since = instance?.drain?.since === undefined ? "" : ` since ${timestampDate(instance.drain.since).toISOString()}`;
      print(`${service}/${id} is drained${since}: Discover, DNS and health checks leave it out until 'muster undrain ${service} ${id}'`);
    });
}

/** `muster undrain SERVICE ID`: puts a drained instance back into discovery. */
export function undrainCommand(): Command {
  return clientCommand("undrain", "put a drained instance back into discovery", ["muster undrain payments p-1"])
    .argument("<service>", "the instance's service")
    .argument("<id>", "the instance's id")
    .action(async (service: string, id: string, flags: RegistryFlags) => {
      const { revision } = await callRegistry(flags, (client, options) => client.undrain({ service, id }, options));
      print(`${service}/${id} is in discovery (revision ${revision})`);
    });
}
