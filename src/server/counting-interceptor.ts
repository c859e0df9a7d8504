import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RegistryMetrics } from "./metrics.js";

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
    let counted = false;
    const ended = (status: number) => {
      if (!counted) calls.end(status);
      counted = true;
    };
    let response: Awaited<ReturnType<typeof next>>;
    try {
      response = await next(request);
    } catch (error) {
      ended(ConnectError.from(error).code);
      throw error;
    }
    if (!response.stream) {
      ended(0);
      return response;
    }
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
          // A stream whose client left or whose deadline passed ends quietly on the server's side.
          ended(request.signal.aborted ? ConnectError.from(request.signal.reason, Code.Canceled).code : 0);
        } catch (error) {
          ended(ConnectError.from(error).code);
          throw error;
        } finally {
          ended(Code.Canceled);
        }
      })(),
    };
  };
}
