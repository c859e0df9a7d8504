import type { AccessGuard } from "./access-guard.js";
import type { DualHandler } from "./dual-protocol-server.js";
import { getEndpointLayer } from "./get-endpoint.js";
import type { RegistryMetrics } from "./metrics.js";

/**
 * A layer that serves `GET /metrics` (Prometheus' text format) on the
 * registry's one port. The metrics are the Status RPC's figures and more:
 * with access tokens or client certificates, a scrape needs what Status needs.
 */
export function metricsLayer(metrics: RegistryMetrics, access: AccessGuard | undefined): (handler: DualHandler) => DualHandler {
  return getEndpointLayer("/metrics", access, async () => ({ type: metrics.contentType, body: await metrics.scrape() }));
}
