import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { RegistryError, type RegistryErrorCode } from "../domain/registry-error.js";
import { watchedMessages } from "../shared/watched-messages.js";

const codes: Record<RegistryErrorCode, Code> = {
  "invalid-argument": Code.InvalidArgument,
  "not-found": Code.NotFound,
  unavailable: Code.Unavailable,
  "resource-exhausted": Code.ResourceExhausted,
  "failed-precondition": Code.FailedPrecondition,
};

/**
 * Maps a handler's failure onto an RPC status: domain errors by their code,
 * anything unexpected logged in full and answered with a terse INTERNAL, so
 * the server neither crashes nor leaks internals.
 */
export function toConnectError(error: unknown, logger: Logger, procedure: string): ConnectError {
  if (error instanceof RegistryError) return new ConnectError(error.message, codes[error.code]);
  if (error instanceof ConnectError) return error;
  logger.error({ err: error, procedure }, "unexpected error in handler");
  return new ConnectError("internal error; the registry logged the details", Code.Internal);
}

/** Applies toConnectError to unary calls and to errors that end a stream. */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (request) => {
    const procedure = request.method.name;
    try {
      const response = await next(request);
      if (!response.stream) return response;
      return { ...response, message: watchedMessages(response.message, { failed: (error) => toConnectError(error, logger, procedure) }) };
    } catch (error) {
      throw toConnectError(error, logger, procedure);
    }
  };
}
