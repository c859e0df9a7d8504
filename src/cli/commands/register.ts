import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { RegistryAgent } from "../../client/agent.js";
import { clientCommand, print, registryClient, type RegistryFlags } from "../command-kit.js";
import { CliError, explainCallError } from "../cli-error.js";
import { collect, collectLabel, parseDuration, parseWeight } from "../parse-flags.js";
import { probeFrom, withCheckFlags, type CheckFlags } from "../check-flags.js";
import { probeOnce, reportProbedHealth, type Probe } from "../../client/health-probe.js";
import { HealthStatus } from "../../../gen/muster/v1/registry_pb.js";

interface RegisterFlags extends RegistryFlags, CheckFlags {
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
 * Ctrl-C (or SIGTERM), then deregisters. For shell-managed processes, demos,
 * and, with a --check flag, beside a service that cannot heartbeat for itself.
 */
export function registerCommand(): Command {
  return withCheckFlags(clientCommand("register", "register an instance and keep it alive until Ctrl-C, then deregister it", [
    "muster register payments --address 10.0.0.7:8080",
    "muster register payments --address 10.0.0.7:8080 --id p-1 --ttl 5s --tag grpc --label env=prod --version 1.4.2",
    "muster register postgres --address 10.0.0.5:5432 --check-tcp 10.0.0.5:5432",
    "muster register web --address 10.0.0.6:8080 --check-http http://10.0.0.6:8080/healthz --check-interval 2s",
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
    .option("--weight <n>", "relative share of traffic, 1 by default", parseWeight))
    .action(async (service: string, flags: RegisterFlags) => {
      const probe = probeFrom(flags);
      const leaving = new AbortController();
      const leave = () => leaving.abort();
      process.once("SIGINT", leave);
      process.once("SIGTERM", leave);
      // The agent's timers do not hold the process open; this does, until a signal arrives.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      try {
        // Registered only once the service answers: a watcher never sees it healthy, then not.
        let check: { probe: Probe; initial: HealthStatus } | undefined;
        if (probe !== undefined) {
          const initial = await firstPass(probe, flags, leaving.signal);
          if (initial === undefined) return;
          check = { probe, initial };
        }
        await keepRegistered(service, flags, check, leaving.signal);
      } finally {
        clearInterval(keepAlive);
        process.off("SIGINT", leave);
        process.off("SIGTERM", leave);
      }
    });
}

/** Registers, heartbeats (with the probed health, given a check and its first result) until `leaving` aborts, then deregisters. */
async function keepRegistered(service: string, flags: RegisterFlags, check: { probe: Probe; initial: HealthStatus } | undefined, leaving: AbortSignal): Promise<void> {
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
  const rejected = new Promise<never>((_, reject) => {
    agent.on("state", ({ state, instance, error }) => {
      if (state === "registered" && instance !== undefined) {
        print(`registered ${instance.service}/${instance.id} (${instance.address}) at revision ${instance.revision}; heartbeating; Ctrl-C deregisters`);
      } else if (state === "reconnecting" && error !== undefined) {
        process.stderr.write(`muster: ${explainCallError(error, flags.registry).message}; retrying\n`);
      } else if (state === "rejected" && error !== undefined) {
        reject(new CliError(`the registry rejected the instance: ${error.rawMessage}`));
      }
    });
  });
  agent.on("drain", (drained) => print(drained ? "drained by an operator: out of discovery until 'muster undrain'" : "undrained: back in discovery"));
  // The checks end with the agent, whether the operator leaves or the registry rejects the instance.
  const checking = new AbortController();
  leaving.addEventListener("abort", () => checking.abort(), { once: true });
  if (check !== undefined) agent.report(check.initial);
  const checks = check === undefined ? undefined : reportProbedHealth(check.probe, (health) => agent.report(health), checking.signal, {
    initial: check.initial,
    intervalMs: flags.checkInterval,
    timeoutMs: flags.checkTimeout,
    onChange: ({ health, detail }) => print(`check: ${detail}; reporting ${HealthStatus[health]}`),
  });
  try {
    await Promise.race([rejected, once(leaving, "abort")]);
  } finally {
    checking.abort();
    await checks;
    const { id } = agent.registered ?? { id: "" };
    await agent.close();
    if (leaving.aborted && id !== "") print(`deregistered ${service}/${id}`);
  }
}

/** Probes until the first pass (its health: HEALTHY or DEGRADED), or until `leaving` aborts (undefined), saying why while it waits. */
async function firstPass(probe: Probe, flags: CheckFlags, leaving: AbortSignal): Promise<HealthStatus | undefined> {
  let said = "";
  while (!leaving.aborted) {
    const { health, detail } = await probeOnce(probe, flags.checkTimeout);
    if (health !== HealthStatus.UNHEALTHY) return health;
    if (detail !== said) process.stderr.write(`muster: check: ${detail}; registering once it passes\n`);
    said = detail;
    await sleep(flags.checkInterval, undefined, { signal: leaving }).catch(() => undefined);
  }
  return undefined;
}
