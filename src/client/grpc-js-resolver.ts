import { experimental, status, type ServiceConfig } from "@grpc/grpc-js";
import type { Instance } from "../../gen/muster/v1/registry_pb.js";
import { createRegistryClient, defaultRegistryUrl, type RegistryClientOptions } from "./registry-client.js";
import { RegistryWatcher } from "./watcher.js";

/** How the `muster:` resolver for @grpc/grpc-js reaches the registry; every field has a default. */
export interface MusterResolverOptions {
  /**
   * The registry for targets that name none (muster:///payments), or
   * several (a leader and its followers: see `createRegistryClient`'s
   * `baseUrl`); one a target names is reached over the first one's scheme,
   * http or https. Default http://127.0.0.1:6878.
   */
  readonly registry?: string | readonly string[];
  /** How to reach the registry, such as its `token` or the `ca` of its certificate. Default: the client's defaults. */
  readonly client?: Omit<RegistryClientOptions, "baseUrl">;
  /**
   * The caller's zone: calls go only to instances in it while it has any
   * taking traffic, and to all of them when it has none (a target's
   * `?zone=` overrides it). Default none: every zone alike.
   */
  readonly zone?: string;
}

/** Round robin, so calls spread over every healthy instance rather than sticking to the first. */
const roundRobin: ServiceConfig = { loadBalancingConfig: [{ round_robin: {} }], methodConfig: [] };

/** How many endpoint entries weights may expand to, to keep the picker small. */
const maxWeightedEntries = 100;

/**
 * Teaches @grpc/grpc-js the `muster:` scheme. After one call, a client made
 * for `muster:///payments` (or `muster://registry-host:6878/payments`, or
 * `muster:///payments?selector=env%3Dprod`) spreads calls round robin over
 * the HEALTHY and DEGRADED instances of payments, in proportion to their
 * weights, and follows every health change live through Watch. With a zone
 * (`?zone=eu-west-1a`, or the `zone` option), calls stay in that zone while
 * it has instances taking traffic, and fail over to every zone when it has
 * none, as cross-zone traffic costs latency and money.
 */
export function registerMusterResolver(options: MusterResolverOptions = {}): void {
  const defaultRegistry = typeof options.registry === "string" ? [options.registry] : (options.registry ?? [defaultRegistryUrl]);
  if (defaultRegistry.length === 0) throw new TypeError("registerMusterResolver: registry must name at least one registry");

  class MusterResolver implements experimental.Resolver {
    private readonly watcher: RegistryWatcher;
    private latest: { endpoints: experimental.Endpoint[]; service: string } | undefined;

    constructor(
      target: experimental.GrpcUri,
      private readonly listener: experimental.ResolverListener,
    ) {
      const { service, selector, registry, zone } = parseTarget(target, defaultRegistry);
      this.watcher = new RegistryWatcher(createRegistryClient({ ...options.client, baseUrl: registry }), { service, selector });
      void this.follow(service, zone ?? options.zone);
    }

    static getDefaultAuthority(target: experimental.GrpcUri): string {
      return parseTarget(target, defaultRegistry).service;
    }

    updateResolution(): void {
      const latest = this.latest;
      if (latest !== undefined) setImmediate(() => this.report(latest.endpoints, latest.service));
    }

    destroy(): void {
      this.watcher.close();
    }

    private async follow(service: string, zone: string | undefined): Promise<void> {
      try {
        for await (const update of this.watcher) {
          if (update.events.length === 0 && !update.snapshot) continue;
          const serving = [...this.watcher.view.values()];
          const local = zone === undefined ? [] : serving.filter((instance) => instance.zone === zone);
          const endpoints = weightedEndpoints(local.length > 0 ? local : serving);
          this.latest = { endpoints, service };
          this.report(endpoints, service);
        }
      } catch (error) {
        this.listener(experimental.statusOrFromError({ code: status.INVALID_ARGUMENT, details: `muster resolver: ${String(error)}` }), {}, null, "");
      }
    }

    private report(endpoints: experimental.Endpoint[], service: string): void {
      const result: experimental.StatusOr<experimental.Endpoint[]> =
        endpoints.length === 0
          ? experimental.statusOrFromError({ code: status.UNAVAILABLE, details: `muster: no healthy instances of ${service}` })
          : experimental.statusOrFromValue(endpoints);
      this.listener(result, {}, experimental.statusOrFromValue(roundRobin), "");
    }
  }

  experimental.registerResolver("muster", MusterResolver);
}

function parseTarget(target: experimental.GrpcUri, defaultRegistry: readonly string[]): { service: string; selector: string; registry: readonly string[]; zone: string | undefined } {
  const url = new URL(`muster://x/${target.path.replace(/^\//, "")}`);
  // A registry named in the target is reached as the default one is, over http or https.
  const registry = target.authority === undefined || target.authority === "" ? defaultRegistry : [`${new URL(defaultRegistry[0] ?? defaultRegistryUrl).protocol}//${target.authority}`];
  return { service: url.pathname.slice(1), selector: url.searchParams.get("selector") ?? "", registry, zone: url.searchParams.get("zone") ?? undefined };
}

/**
 * One endpoint per instance, repeated in proportion to its weight (weights
 * divided by their greatest common divisor, scaled down to at most 100
 * entries), since round robin picks endpoint entries in turn.
 */
function weightedEndpoints(instances: readonly Instance[]): experimental.Endpoint[] {
  const sorted = [...instances].sort((a, b) => (a.id < b.id ? -1 : 1));
  const weights = sorted.map((instance) => Math.max(1, instance.weight));
  const divisor = weights.reduce(gcd, 0) || 1;
  const total = weights.reduce((sum, weight) => sum + weight / divisor, 0);
  const scale = total > maxWeightedEntries ? maxWeightedEntries / total : 1;
  return sorted.flatMap((instance, index) => {
    const copies = Math.max(1, Math.round(((weights[index] ?? 1) / divisor) * scale));
    const endpoint = { addresses: [hostPort(instance.address)] };
    return Array.from({ length: copies }, () => endpoint);
  });
}

function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port: Number(address.slice(colon + 1)) };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
