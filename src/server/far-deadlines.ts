import type { DualHandler } from "./dual-protocol-server.js";
import { longestTimerMs, parseTimeout } from "./grpc-request.js";

/**
 * Takes a deadline further off than a Node timer can hold (about 24.8 days)
 * as none on the calls Connect serves (gRPC-Web, Connect, gRPC with JSON or
 * gzip), as the gRPC fast path does (`parseTimeout`). Connect-ES sets its
 * deadline timer to whatever the request asks, and Node fires a timer set
 * past 2^31 - 1 ms after 1 ms: a Watch asking for 100 days ended at once.
 */
export function farDeadlinesLayer(inner: DualHandler): DualHandler {
  return (request, response) => {
    const { headers } = request;
    if (headers["grpc-timeout"] !== undefined && parseTimeout(headers["grpc-timeout"]) === undefined) delete headers["grpc-timeout"];
    const connectTimeout = headers["connect-timeout-ms"];
    if (typeof connectTimeout === "string" && Number(connectTimeout) > longestTimerMs) delete headers["connect-timeout-ms"];
    inner(request, response);
  };
}
