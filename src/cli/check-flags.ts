import type { Command } from "commander";
import { grpcProbe, httpProbe, tcpProbe, type Probe } from "../client/health-probe.js";
import { CliError } from "./cli-error.js";
import { parseDuration } from "./parse-flags.js";

/** The health-check flags of `muster register`, as commander parses them. */
export interface CheckFlags {
  readonly checkHttp?: string;
  readonly checkTcp?: string;
  readonly checkGrpc?: string;
  readonly checkInterval: number;
  readonly checkTimeout: number;
}

/** Adds --check-http, --check-tcp and --check-grpc, and their interval and timeout. */
export function withCheckFlags(command: Command): Command {
  return command
    .option("--check-http <url>", "report the instance HEALTHY while GET url answers 200-399 (429: DEGRADED), else UNHEALTHY")
    .option("--check-tcp <host:port>", "report it HEALTHY while a TCP connection to host:port opens")
    .option("--check-grpc <host:port>", "report it HEALTHY while its grpc.health.v1 Check answers SERVING")
    .option("--check-interval <duration>", "time between checks", parseDuration, 5_000)
    .option("--check-timeout <duration>", "a check that takes longer fails", parseDuration, 2_000);
}

/** The probe the flags ask for, undefined when they ask for none; one check at most. */
export function probeFrom(flags: CheckFlags): Probe | undefined {
  const asked = [flags.checkHttp, flags.checkTcp, flags.checkGrpc].filter((value) => value !== undefined);
  if (asked.length > 1) throw new CliError("give one check: --check-http, --check-tcp or --check-grpc");
  if (flags.checkHttp !== undefined) {
    if (!/^https?:\/\//.test(flags.checkHttp)) throw new CliError(`--check-http must be an http:// or https:// URL (got "${flags.checkHttp}")`);
    return httpProbe(flags.checkHttp);
  }
  if (flags.checkTcp !== undefined) return tcpProbe(checkedAddress("--check-tcp", flags.checkTcp));
  if (flags.checkGrpc !== undefined) return grpcProbe(flags.checkGrpc.includes("://") ? flags.checkGrpc : checkedAddress("--check-grpc", flags.checkGrpc));
  return undefined;
}

function checkedAddress(flag: string, address: string): string {
  let port = "";
  try {
    port = new URL(`tcp://${address}`).port;
  } catch {
    // Reported below with the rest.
  }
  if (port === "") throw new CliError(`${flag} must be host:port, such as 127.0.0.1:5432 or [::1]:5432 (got "${address}")`);
  return address;
}
