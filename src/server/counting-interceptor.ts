import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RegistryMetrics } from "./metrics.js";
import { watchedMessages } from "../shared/watched-messages.js";

/**
 * Counts the calls Connect serves (Connect, gRPC-Web, gRPC with JSON or
 * compression) with the code each ends with. It goes first among the
 * interceptors, so refusals and the statuses that domain errors become are
 * counted as the client sees them. A stream the client leaves counts as
 * CANCELLED, one past its deadline as DEADLINE_EXCEEDED.
 */
export function countingInterceptor(callsOf: RegistryMetrics["callsOf"]): Interceptor {
  return (next) => async (request) => {
    const calls = callsOf(request.method);
    calls.start();
    let response: Awaited<ReturnType<typeof next>>;
    try {
      response = await next(request);
    } catch (error) {
      calls.end(ConnectError.from(error).code);
      throw error;
    }
    if (!response.stream) {
      calls.end(0);
      return response;
    }
    return {
      ...response,
      message: watchedMessages(response.message, {
        // A stream whose client left or whose deadline passed ends quietly on the server's side.
        done: () => calls.end(request.signal.aborted ? ConnectError.from(request.signal.reason, Code.Canceled).code : 0),
        failed: (error) => {
          calls.end(ConnectError.from(error).code);
          return error;
        },
        left: () => calls.end(Code.Canceled),
      }),
    };
  };
}
