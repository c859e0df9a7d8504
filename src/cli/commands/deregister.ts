import type { Command } from "commander";
import { callRegistry, clientCommand, print, type RegistryFlags } from "../command-kit.js";

/** `muster deregister SERVICE ID`: removes one instance. */
export function deregisterCommand(): Command {
  return clientCommand("deregister", "remove an instance from the registry", ["muster deregister payments p-1"])
    .argument("<service>", "the instance's service")
    .argument("<id>", "the instance's id")
    .action(async (service: string, id: string, flags: RegistryFlags) => {
      const { revision } = await callRegistry(flags, (client, options) => client.deregister({ service, id }, options));
      print(`deregistered ${service}/${id} at revision ${revision}`);
    });
}
