import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { HealthStatus } from "../../gen/muster/v1/registry_pb.js";

/*
 * Health checks run beside a service that cannot heartbeat for itself (a
 * database, a legacy server, a third-party process), as Consul's agent runs
 * them: each probe's result becomes the health its RegistryAgent reports.
 */

/** What one probe found: the health to report, and a few words on why. */
export interface ProbeResult {
  readonly health: HealthStatus;
  readonly detail: string;
}

/** One look at a service; it may throw (a refused connection), which counts as UNHEALTHY. */
export type Probe = (signal: AbortSignal) => Promise<ProbeResult>;

/**
 * An HTTP GET, judged as Kubernetes judges an httpGet probe: 200-399 is
 * HEALTHY (redirects are not followed), 429 is DEGRADED (Consul's warning),
 * anything else UNHEALTHY.
 */
export function httpProbe(url: string): Probe {
  return async (signal) => {
    const response = await fetch(url, { signal, redirect: "manual" });
    await response.body?.cancel();
    const health = response.status >= 200 && response.status < 400 ? HealthStatus.HEALTHY : response.status === 429 ? HealthStatus.DEGRADED : HealthStatus.UNHEALTHY;
    return { health, detail: `GET ${url} answered ${response.status}` };
  };
}

/** A TCP connection to host:port (`[v6]:port` for IPv6): HEALTHY once it opens. */
export function tcpProbe(address: string): Probe {
  const { hostname, port } = new URL(`tcp://${address}`);
  const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  return (signal) =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host, port: Number(port), signal });
      socket.once("connect", () => {
        socket.destroy();
        resolve({ health: HealthStatus.HEALTHY, detail: `connected to ${address}` });
      });
      socket.once("error", reject);
    });
}

/**
 * The standard gRPC health check, `grpc.health.v1.Health/Check` of
 * `service` (default "", the server as a whole): SERVING is HEALTHY,
 * anything else UNHEALTHY. `target` is host:port (cleartext) or a URL.
 */
export function grpcProbe(target: string, service = ""): Probe {
  const health = createClient(Health, createGrpcTransport({ baseUrl: target.includes("://") ? target : `http://${target}` }));
  return async (signal) => {
    const { status } = await health.check({ service }, { signal });
    return { health: status === ServingStatus.SERVING ? HealthStatus.HEALTHY : HealthStatus.UNHEALTHY, detail: `${target} is ${(ServingStatus[status] as string | undefined) ?? status}` };
  };
}

/** Runs `probe` with a deadline of `timeoutMs`; a probe that throws or runs out of time is UNHEALTHY, with the reason. */
export async function probeOnce(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await probe(signal);
  } catch (error) {
    return { health: HealthStatus.UNHEALTHY, detail: signal.aborted ? `no answer within ${timeoutMs}ms` : failureOf(error) };
  }
}

/** How often and how patiently `reportProbedHealth` probes; every field has a default. */
export interface HealthCheckOptions {
  /** From the end of one probe to the start of the next. Default 5s. */
  readonly intervalMs?: number;
  /** A probe that takes longer fails. Default 2s. */
  readonly timeoutMs?: number;
  /** The health reported before the first probe; a change from it is reported. Default HEALTHY. */
  readonly initial?: HealthStatus;
  /** Told of each result whose health differs from the one before. */
  readonly onChange?: (result: ProbeResult) => void;
}

/**
 * Probes until `signal` aborts, and tells `report` (a RegistryAgent's
 * `report`, say) each time the health changes, so the agent's next
 * heartbeat, sent at once, carries it.
 */
export async function reportProbedHealth(probe: Probe, report: (health: HealthStatus) => void, signal: AbortSignal, options: HealthCheckOptions = {}): Promise<void> {
  let health = options.initial ?? HealthStatus.HEALTHY;
  // A function, not a property read, so checks after an await are not narrowed away.
  const stopped = () => signal.aborted;
  while (!stopped()) {
    await sleep(options.intervalMs ?? 5_000, undefined, { signal }).catch(() => undefined);
    if (stopped()) return;
    const result = await probeOnce(probe, options.timeoutMs ?? 2_000);
    if (result.health === health || stopped()) continue;
    health = result.health;
    report(health);
    options.onChange?.(result);
  }
}

/** fetch hides the reason in `cause` ("fetch failed" alone says nothing); Connect's message carries its code. */
function failureOf(error: unknown): string {
  if (error instanceof ConnectError) return error.message;
  if (error instanceof Error) return error.cause instanceof Error ? error.cause.message : error.message;
  return String(error);
}
