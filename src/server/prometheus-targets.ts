import type { InstanceRecord } from "../domain/instance.js";
import { RegistryError } from "../domain/registry-error.js";
import type { Registry } from "../domain/registry.js";
import type { AccessGuard } from "./access-guard.js";
import type { DualHandler } from "./dual-protocol-server.js";
import { getEndpointLayer, type EndpointAnswer } from "./get-endpoint.js";
import { everyInstance } from "../domain/filter.js";

/** Where Prometheus' `http_sd_configs` find the registry's instances. */
export const prometheusTargetsPath = "/prometheus/targets";

/** One target group of Prometheus' HTTP service discovery: here, one instance and its labels. */
interface TargetGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * A layer that answers `GET /prometheus/targets` in the format of
 * Prometheus' HTTP service discovery, so Prometheus scrapes what registers
 * here as it scrapes Consul's catalog. Every instance is a target, whatever
 * its health or drain (a failing instance is the one to watch; relabelling
 * can drop it by `__meta_muster_health`). The query takes Discover's
 * filters: `service`, `selector`, `tag` (repeated), `version`, `capability`, `zone`.
 */
export function prometheusTargetsLayer(registry: Registry, access: AccessGuard | undefined): (handler: DualHandler) => DualHandler {
  return getEndpointLayer(prometheusTargetsPath, access, (query) => Promise.resolve(targetsAnswer(registry, query)));
}

function targetsAnswer(registry: Registry, query: URLSearchParams): EndpointAnswer {
  let instances: readonly InstanceRecord[];
  try {
    instances = registry.discover({
      ...everyInstance,
      service: query.get("service") ?? "",
      tags: query.getAll("tag"),
      selector: query.get("selector") ?? "",
      version: query.get("version") ?? "",
      capability: query.get("capability") ?? "",
      zone: query.get("zone") ?? "",
    }).instances;
  } catch (error) {
    if (!(error instanceof RegistryError) || error.code !== "invalid-argument") throw error;
    return { status: 400, type: "text/plain; charset=utf-8", body: `${error.message}\n` };
  }
  return { type: "application/json", body: JSON.stringify(instances.map(targetGroup)) };
}

/** The instance's address as the target, and what it is as `__meta_muster_*` labels, as Consul's service discovery names them. */
function targetGroup(instance: InstanceRecord): TargetGroup {
  const labels: Record<string, string> = {
    __meta_muster_service: instance.service,
    __meta_muster_id: instance.id,
    __meta_muster_address: instance.address,
    __meta_muster_version: instance.version,
    __meta_muster_zone: instance.zone,
    __meta_muster_health: instance.health,
    __meta_muster_drained: String(instance.drain !== undefined),
    // Separators at both ends, as Consul's tags: a relabel regex `.*,canary,.*` matches whole tags.
    __meta_muster_tags: `,${instance.tags.join(",")},`,
    __meta_muster_capabilities: `,${instance.capabilities.join(",")},`,
  };
  for (const [key, value] of Object.entries(instance.labels)) labels[`__meta_muster_label_${labelName(key)}`] = value;
  return { targets: [instance.address], labels };
}

/** A label key (`app.kubernetes.io/name`) as a Prometheus label name, as Kubernetes' service discovery writes it: `app_kubernetes_io_name`. */
function labelName(key: string): string {
  return key.replaceAll(/[^A-Za-z0-9_]/g, "_");
}
