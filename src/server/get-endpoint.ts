import type { AccessGuard } from "./access-guard.js";
import type { PeerSocket } from "./client-certificates.js";
import type { DualHandler } from "./dual-protocol-server.js";

/** What an endpoint answers: a status (200 unless said), a content type and a body. */
export interface EndpointAnswer {
  readonly status?: number;
  readonly type: string;
  readonly body: string;
}

/** The read-only RPC whose access rules an endpoint follows: what may ask Status may read these. */
const readsLikeStatus = "/muster.v1.RegistryService/Status";

const text = "text/plain; charset=utf-8";

/**
 * A layer that answers `GET path` on the registry's one port, in front of a
 * handler, and passes every other request through. Under access tokens or
 * client certificates a request needs what a Status call needs, as
 * Prometheus sends them (`authorization: { credentials_file }`,
 * `tls_config: { cert_file, key_file }`); refused, it gets 401 with the
 * reason. `answer` gets the query parameters.
 */
export function getEndpointLayer(path: string, access: AccessGuard | undefined, answer: (query: URLSearchParams) => Promise<EndpointAnswer>): (handler: DualHandler) => DualHandler {
  return (handler) => (request, response) => {
    // Every Connect request passes through here: the path is compared before anything is parsed.
    const target = request.url ?? "/";
    const queryAt = target.indexOf("?");
    if ((queryAt === -1 ? target : target.slice(0, queryAt)) !== path) return handler(request, response);
    if (request.method !== "GET") {
      response.writeHead(405, { "Content-Type": text, Allow: "GET" });
      response.end(`${path} is read with GET\n`);
      return;
    }
    const refused = access?.refusal(readsLikeStatus, request.headers.authorization, request.socket as PeerSocket);
    if (refused !== undefined) {
      response.writeHead(401, { "Content-Type": text, "WWW-Authenticate": "Bearer" });
      response.end(`${refused.rawMessage}; Prometheus sends a token with authorization: { credentials_file: ... } and a client certificate with tls_config: { cert_file: ..., key_file: ... }\n`);
      return;
    }
    answer(new URLSearchParams(queryAt === -1 ? "" : target.slice(queryAt + 1))).then(
      ({ status, type, body }) => {
        response.writeHead(status ?? 200, { "Content-Type": type });
        response.end(body);
      },
      (error: unknown) => {
        response.writeHead(500, { "Content-Type": text });
        response.end(`could not answer ${path}: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  };
}
