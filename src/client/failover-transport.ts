import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { watchedMessages } from "../shared/watched-messages.js";

/** How a client of several registries goes back to the first one. */
export interface Failback {
  /** While calls go to another registry, how long between asks whether the first one is back. */
  readonly everyMs: number;
  /** A cheap call over `transport` that resolves only if its registry answers (Status). */
  readonly probe: (transport: Transport) => Promise<unknown>;
}

/**
 * Stops the failback probes of a transport its client dropped. The probes'
 * timer holds the transports it calls, never the failover transport, so a
 * dropped client is collected and its probes end, instead of asking a
 * registry that may never come back every `everyMs` for the life of the
 * process.
 */
const dropped = new FinalizationRegistry<() => void>((stopProbing) => stopProbing());

/**
 * Calls one of several registries (a leader and its followers) at a time:
 * the first, until a call to it fails with UNAVAILABLE, then the next, and
 * so on around. It retries nothing itself, since only the caller knows
 * whether a call may be made twice: the caller's own retry (an agent's next
 * heartbeat, a watcher resuming from its revision, the CLI's next try) goes
 * to the next registry. Calls that fail together, as every call on a
 * connection that broke does, move it on once, not once each.
 *
 * With `failback`, while calls go elsewhere the first registry is asked
 * every `everyMs` whether it is back, in the background, and once it
 * answers the calls made after go to it again: a leader restarted for an
 * upgrade gets its agents back, instead of their writes taking a
 * follower's extra hop (and depending on the follower) from then on.
 * Streams already open stay where they are until they end.
 */
export function failoverTransport(transports: readonly Transport[], failback?: Failback): Transport {
  let current = 0;
  let probing = false;
  let probeTimer: ReturnType<typeof setTimeout> | undefined;
  let discarded = false;
  const pick = (): [number, Transport] => {
    const transport = transports[current];
    if (transport === undefined) throw new TypeError("failoverTransport needs at least one transport");
    return [current, transport];
  };
  const probeFirst = (first: Transport, failback: Failback) => {
    if (discarded) return;
    probing = true;
    probeTimer = setTimeout(() => {
      void failback
        .probe(first)
        .then(
          () => (current = 0),
          () => undefined,
        )
        .finally(() => {
          probing = false;
          // Still elsewhere: the first did not answer, so ask again later.
          if (current !== 0) probeFirst(first, failback);
        });
    }, failback.everyMs).unref();
  };
  const failed = (used: number, error: unknown): unknown => {
    if (used === current && ConnectError.from(error).code === Code.Unavailable) {
      current = (current + 1) % transports.length;
      const [first] = transports;
      if (current !== 0 && !probing && failback !== undefined && first !== undefined && Number.isFinite(failback.everyMs)) probeFirst(first, failback);
    }
    return error;
  };
  const transport: Transport = {
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
  if (failback !== undefined) {
    dropped.register(transport, () => {
      discarded = true;
      clearTimeout(probeTimer);
    });
  }
  return transport;
}
