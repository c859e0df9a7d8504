import type { AccessGuard } from "./access-guard.js";
import type { DualHandler } from "./dual-protocol-server.js";
import type { RegistryMetrics } from "./metrics.js";

/** The metrics are the Status RPC's figures and more: a token that may ask Status may scrape them. */
const readsLikeStatus = "/muster.v1.RegistryService/Status";

/**
 * A layer that serves `GET /metrics` (Prometheus' text format) on the
 * registry's one port, in front of a handler, and passes every other
 * request through. With access tokens, a scrape needs one, read or write,
 * as Prometheus sends it (`authorization` with `credentials_file`).
 */
export function metricsLayer(metrics: RegistryMetrics, access: AccessGuard | undefined): (handler: DualHandler) => DualHandler {
  return (handler) => (request, response) => {
    if (request.url?.split("?")[0] !== "/metrics") return handler(request, response);
    const text = { "Content-Type": "text/plain; charset=utf-8" };
    if (request.method !== "GET") {
      response.writeHead(405, { ...text, Allow: "GET" });
      response.end("the metrics are read with GET /metrics\n");
      return;
    }
    const refused = access?.refusal(readsLikeStatus, request.headers.authorization);
    if (refused !== undefined) {
      response.writeHead(401, { ...text, "WWW-Authenticate": "Bearer" });
      response.end(`${refused.rawMessage}; Prometheus sends one with authorization: { credentials_file: ... } in its scrape config\n`);
      return;
    }
    metrics.scrape().then(
      (exposition) => {
        response.writeHead(200, { "Content-Type": metrics.contentType });
        response.end(exposition);
      },
      (error: unknown) => {
        response.writeHead(500, text);
        response.end(`could not read the metrics: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  };
}
