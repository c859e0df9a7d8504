import { Code, ConnectError } from "@connectrpc/connect";
import { Command, Option } from "commander";
import { createRegistryClient, defaultRegistryUrl, type RegistryClient } from "../client/registry-client.js";
import type { WatchFilter } from "../client/watcher.js";
import { CliError, explainCallError, readSettingFile, registryList } from "./cli-error.js";
import { collect, oneOf } from "./parse-flags.js";

/** How long a one-shot command waits for the registry. */
const callTimeoutMs = 5_000;
/**
 * Of several registries, how long one may take to open a connection before
 * a command goes on to the next: a host that is down drops packets, and
 * its call would otherwise end at the deadline without trying the others.
 */
const failoverConnectTimeoutMs = 2_000;

/** The flags every client command takes: which registry, and how to prove who is calling. */
export interface RegistryFlags {
  readonly registry: string;
  readonly token?: string;
  readonly tlsClientCert?: string;
  readonly tlsClientKey?: string;
}

/** A client command: takes --registry (MUSTER_REGISTRY), default the local registry. */
export function clientCommand(name: string, description: string, examples: readonly string[]): Command {
  return new Command(name)
    .description(description)
    .addOption(new Option("--registry <url>", "the registry to talk to, or several comma-separated (a leader and its followers): one is called, and the next when it cannot be reached").env("MUSTER_REGISTRY").default(defaultRegistryUrl))
    .addOption(new Option("--token <token>", "for a registry that requires one (prefer MUSTER_TOKEN: a flag shows in ps)").env("MUSTER_TOKEN"))
    .addOption(new Option("--tls-client-cert <file>", "for a registry that requires client certificates: this client's PEM certificate").env("MUSTER_TLS_CLIENT_CERT"))
    .addOption(new Option("--tls-client-key <file>", "the client certificate's PEM key").env("MUSTER_TLS_CLIENT_KEY"))
    .addHelpText("after", `\nExamples:\n${examples.map((example) => `  $ ${example}`).join("\n")}\n`);
}

/**
 * Runs one call against the registry with a deadline, over `client` when
 * given (one connection for many calls); failures become one-line
 * CliErrors. With several registries in --registry, a call that finds one
 * unreachable is made again on the next (the client has moved on to it).
 */
export async function callRegistry<T>(flags: RegistryFlags, call: (client: RegistryClient, options: { timeoutMs: number }) => Promise<T>, client = registryClient(flags)): Promise<T> {
  for (let triesLeft = registryUrls(flags).length; ; triesLeft--) {
    try {
      return await call(client, { timeoutMs: callTimeoutMs });
    } catch (error) {
      const unreachable = ConnectError.from(error).code === Code.Unavailable;
      if (triesLeft > 1 && unreachable) continue;
      throw explainCallError(error, flags.registry, unreachable);
    }
  }
}

/**
 * A gRPC client for the registries the flags name, with their token and
 * client certificate. With several registries, each gets 2 s to open a
 * connection before the call moves on to the next.
 */
export function registryClient(flags: RegistryFlags): RegistryClient {
  if ((flags.tlsClientCert === undefined) !== (flags.tlsClientKey === undefined)) {
    throw new CliError("a client certificate needs its key: --tls-client-cert (MUSTER_TLS_CLIENT_CERT) and --tls-client-key (MUSTER_TLS_CLIENT_KEY) go together");
  }
  const identity = flags.tlsClientCert === undefined || flags.tlsClientKey === undefined ? {} : { cert: readSettingFile(flags.tlsClientCert, "client certificate (--tls-client-cert, MUSTER_TLS_CLIENT_CERT)"), key: readSettingFile(flags.tlsClientKey, "client key (--tls-client-key, MUSTER_TLS_CLIENT_KEY)") };
  const urls = registryUrls(flags);
  return createRegistryClient({ baseUrl: urls, protocol: "grpc", token: flags.token, ...identity, ...(urls.length > 1 ? { connectTimeoutMs: failoverConnectTimeoutMs } : {}) });
}

/** The registries --registry names, in order. */
function registryUrls(flags: RegistryFlags): string[] {
  const urls = registryList(flags.registry);
  if (urls.length === 0) throw new CliError(`--registry (MUSTER_REGISTRY) must name a registry, such as ${defaultRegistryUrl} (got "${flags.registry}")`);
  return urls;
}

/** The filter flags as commander parsed them (`withFilterFlags`); each one left out filters nothing. */
export interface FilterFlags {
  readonly selector?: string;
  readonly tag?: string[];
  readonly version?: string;
  readonly capability?: string;
  readonly zone?: string;
  readonly all?: boolean;
}

/** The filter flags ls and watch share: the selection flags and --all. */
export function withFilterFlags(command: Command): Command {
  return withSelectionFlags(command).option("-A, --all", "include UNHEALTHY and drained instances");
}

/** The flags that pick instances by what they are, whatever their health: --selector, --tag, --version, --capability, --zone. */
export function withSelectionFlags(command: Command): Command {
  return command
    .option("-l, --selector <selector>", "label selector, such as 'env=prod,tier in (web,api)'")
    .option("--tag <tag>", "only instances with this tag (repeatable)", collect)
    .option("--version <range>", "only versions in this semver range, such as '>=1.2 <2'")
    .option("--capability <capability>", "only instances with this capability")
    .option("--zone <zone>", "only instances in this zone");
}

/**
 * The filter the flags (and an optional service) describe, in the shape
 * Discover and Watch take. A flag left out filters nothing; without --all,
 * UNHEALTHY and drained instances are left out, as the registry does.
 */
export function filterFrom(service: string | undefined, flags: FilterFlags): WatchFilter {
  return {
    service: service ?? "",
    selector: flags.selector ?? "",
    tags: flags.tag ?? [],
    version: flags.version ?? "",
    capability: flags.capability ?? "",
    zone: flags.zone ?? "",
    includeUnhealthy: flags.all === true,
    includeDrained: flags.all === true,
  };
}

/** -o with the given formats; the first is the default. */
export function outputOption<T extends string>(formats: readonly [T, ...T[]], defaultFormat?: T): Option {
  const option = new Option("-o, --output <format>", `output format: ${formats.join(", ")}`).argParser(oneOf(formats));
  return defaultFormat === undefined ? option : option.default(defaultFormat);
}

/** Writes a line to stdout. */
export function print(line: string): void {
  process.stdout.write(line.endsWith("\n") ? line : `${line}\n`);
}
