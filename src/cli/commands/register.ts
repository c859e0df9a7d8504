import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { RegistryAgent } from "../../client/agent.js";
import { clientCommand, print, registryClient, type RegistryFlags } from "../command-kit.js";
import { CliError, explainCallError } from "../cli-error.js";
import { collect, collectLabel, parseDuration, parseWeight } from "../parse-flags.js";

interface RegisterFlags extends RegistryFlags {
  address: string;
  id?: string;
  ttl?: number;
  deregisterAfter?: number;
  tag?: string[];
  label?: Record<string, string>;
  capability?: string[];
  version?: string;
  zone?: string;
  weight?: number;
}

/**
 * `muster register SERVICE --address HOST:PORT`: registers, heartbeats until
 * Ctrl-C (or SIGTERM), then deregisters. For shell-managed processes and demos.
 */
export function registerCommand(): Command {
  return clientCommand("register", "register an instance and keep it alive until Ctrl-C, then deregister it", [
    "muster register payments --address 10.0.0.7:8080",
    "muster register payments --address 10.0.0.7:8080 --id p-1 --ttl 5s --tag grpc --label env=prod --version 1.4.2",
  ])
    .argument("<service>", "the service name (a DNS-1123 label)")
    .requiredOption("--address <host:port>", "where the instance is reached")
    .option("--id <id>", "the instance id (default: generated)")
    .option("--ttl <duration>", "heartbeat deadline, such as 10s", parseDuration)
    .option("--deregister-after <duration>", "how long an UNHEALTHY instance stays before it expires", parseDuration)
    .option("--tag <tag>", "a tag (repeatable)", collect)
    .option("--label <key=value>", "a label (repeatable)", collectLabel)
    .option("--capability <capability>", "a capability (repeatable)", collect)
    .option("--version <semver>", "the instance's version")
    .option("--zone <zone>", "the instance's zone")
    .option("--weight <n>", "relative share of traffic, 1 by default", parseWeight)
    .action(async (service: string, flags: RegisterFlags) => {
      const agent = new RegistryAgent(registryClient(flags), {
        service,
        id: flags.id ?? "",
        address: flags.address,
        version: flags.version ?? "",
        tags: flags.tag ?? [],
        labels: flags.label ?? {},
        capabilities: flags.capability ?? [],
        zone: flags.zone ?? "",
        weight: flags.weight ?? 0,
        ttl: flags.ttl === undefined ? undefined : durationFromMs(flags.ttl),
        deregisterAfter: flags.deregisterAfter === undefined ? undefined : durationFromMs(flags.deregisterAfter),
      });
      const done = new Promise<void>((resolve, reject) => {
        agent.on("state", ({ state, instance, error }) => {
          if (state === "registered" && instance !== undefined) {
            print(`registered ${instance.service}/${instance.id} (${instance.address}) at revision ${instance.revision}; heartbeating; Ctrl-C deregisters`);
          } else if (state === "reconnecting" && error !== undefined) {
            process.stderr.write(`muster: ${explainCallError(error, flags.registry).message}; retrying\n`);
          } else if (state === "rejected" && error !== undefined) {
            reject(new CliError(`the registry rejected the instance: ${error.rawMessage}`));
          }
        });
        const leave = () => {
          const { id } = agent.registered ?? { id: "" };
          void agent.close().then(() => {
            if (id !== "") print(`deregistered ${service}/${id}`);
            resolve();
          });
        };
        process.once("SIGINT", leave);
        process.once("SIGTERM", leave);
      });
      // The agent's timers do not hold the process open; this does, until a signal arrives.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      try {
        await done;
      } finally {
        clearInterval(keepAlive);
        await agent.close();
      }
    });
}
