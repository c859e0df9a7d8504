import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import type { RegistryClient } from "../../client/registry-client.js";
import { callRegistry, clientCommand, filterFrom, print, registryClient, withSelectionFlags, type FilterFlags, type RegistryFlags } from "../command-kit.js";
import { CliError } from "../cli-error.js";
import { counted } from "../format.js";

type SelectionFlags = RegistryFlags & Omit<FilterFlags, "all">;

/** `muster drain SERVICE ID` or `muster drain SERVICE --zone Z`: takes instances out of discovery without stopping them. */
export function drainCommand(): Command {
  return withSelectionFlags(
    clientCommand("drain", "take an instance, or every instance a selection matches, out of discovery without stopping it, until 'muster undrain'", [
      "muster drain payments p-1 --reason 'debugging a memory leak'",
      "muster drain payments --zone eu-west-1a --reason 'zone maintenance'",
      "muster ls payments --all    # drained instances show as HEALTHY (drained)",
    ])
      .argument("<service>", "the instances' service")
      .argument("[id]", "one instance's id; without it, the selection flags choose")
      .option("--reason <text>", "why, for whoever sees it in 'muster ls' (at most 256 characters)", ""),
  ).action(async (service: string, id: string | undefined, flags: SelectionFlags & { reason: string }) => {
    if (id !== undefined) {
      const { instance } = await callRegistry(flags, (client, options) => client.drain({ service, id, reason: flags.reason }, options));
      const since = instance?.drain?.since === undefined ? "" : ` since ${timestampDate(instance.drain.since).toISOString()}`;
      print(`${service}/${id} is drained${since}: Discover, DNS and health checks leave it out until 'muster undrain ${service} ${id}'`);
      return;
    }
    const ids = await eachSelected("drain", service, flags, (client, one, options) => client.drain({ service, id: one, reason: flags.reason }, options));
    print(`drained ${counted(ids.length, "instance")} of ${service}: ${ids.join(", ")}`);
  });
}

/** `muster undrain SERVICE ID` or `muster undrain SERVICE --zone Z`: puts drained instances back into discovery. */
export function undrainCommand(): Command {
  return withSelectionFlags(
    clientCommand("undrain", "put a drained instance, or every instance a selection matches, back into discovery", [
      "muster undrain payments p-1",
      "muster undrain payments --zone eu-west-1a",
    ])
      .argument("<service>", "the instances' service")
      .argument("[id]", "one instance's id; without it, the selection flags choose"),
  ).action(async (service: string, id: string | undefined, flags: SelectionFlags) => {
    if (id !== undefined) {
      const { revision } = await callRegistry(flags, (client, options) => client.undrain({ service, id }, options));
      print(`${service}/${id} is in discovery (revision ${revision})`);
      return;
    }
    const ids = await eachSelected("undrain", service, flags, (client, one, options) => client.undrain({ service, id: one }, options));
    print(`undrained ${counted(ids.length, "instance")} of ${service}: ${ids.join(", ")}`);
  });
}

/**
 * Calls `change` for every instance of `service` the selection flags match,
 * whatever its health or drain, one call each: not atomic, so a failure
 * says which instances it had already changed.
 */
async function eachSelected(verb: string, service: string, flags: SelectionFlags, change: (client: RegistryClient, id: string, options: { timeoutMs: number }) => Promise<unknown>): Promise<string[]> {
  if (flags.selector === undefined && flags.tag === undefined && flags.version === undefined && flags.capability === undefined && flags.zone === undefined) {
    throw new CliError(`name one instance, or choose several with --zone, --selector, --tag, --version or --capability: '${verb}' does not take a whole service without one`);
  }
  const client = registryClient(flags);
  const { instances } = await callRegistry(flags, (registry, options) => registry.discover({ ...filterFrom(service, flags), includeUnhealthy: true, includeDrained: true }, options), client);
  if (instances.length === 0) throw new CliError(`no instance of ${service} matches; nothing to ${verb}`);
  const done: string[] = [];
  for (const { id } of instances) {
    try {
      await callRegistry(flags, (registry, options) => change(registry, id, options), client);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new CliError(`${verb} stopped at ${service}/${id}: ${message}${done.length === 0 ? "" : ` (already done: ${done.join(", ")})`}`);
    }
    done.push(id);
  }
  return done;
}
