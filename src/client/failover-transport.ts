import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { watchedMessages } from "../shared/watched-messages.js";

/**
 * Calls one of several registries (a leader and its followers) at a time:
 * the first, until a call to it fails with UNAVAILABLE, then the next, and
 * so on around. It retries nothing itself, since only the caller knows
 * whether a call may be made twice: the caller's own retry (an agent's next
 * heartbeat, a watcher resuming from its revision, the CLI's next try) goes
 * to the next registry. Calls that fail together, as every call on a
 * connection that broke does, move it on once, not once each.
 */
export function failoverTransport(transports: readonly Transport[]): Transport {
  let current = 0;
  const pick = (): [number, Transport] => {
    const transport = transports[current];
    if (transport === undefined) throw new TypeError("failoverTransport needs at least one transport");
    return [current, transport];
  };
  const failed = (used: number, error: unknown): unknown => {
    if (used === current && ConnectError.from(error).code === Code.Unavailable) current = (current + 1) % transports.length;
    return error;
  };
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const [used, transport] = pick();
      try {
        return await transport.unary(method, signal, timeoutMs, header, input, contextValues);
      } catch (error) {
        throw failed(used, error);
      }
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const [used, transport] = pick();
      try {
        const response = await transport.stream(method, signal, timeoutMs, header, input, contextValues);
        return { ...response, message: watchedMessages(response.message, { failed: (error) => failed(used, error) }) };
      } catch (error) {
        throw failed(used, error);
      }
    },
  };
}
