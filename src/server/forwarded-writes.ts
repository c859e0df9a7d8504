import { Code, ConnectError, type CallOptions, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Registry } from "../domain/registry.js";
import type { RegistryService } from "../../gen/muster/v1/registry_pb.js";

/** The calls that change a registry, which a follower sends on to its leader. */
export type WriteMethod = "register" | "heartbeat" | "drain" | "undrain" | "deregister" | "releaseExpiryHold";

/** A client of the leader that makes the write calls (`createRegistryClient` gives one). */
export type LeaderWrites = Pick<Client<typeof RegistryService>, WriteMethod>;

/** How long a follower waits for its copy of a forwarded write before answering without it. */
const copyWaitMs = 2_000;

/**
 * A follower's writes: each one is sent to its leader with the caller's
 * own `authorization` header (the leader decides who may write) and the
 * caller's deadline, and answered with the leader's answer once this
 * follower's copy holds the write, so whoever writes through a follower
 * reads the write back from it. If the copy lags past `copyWaitMs` (the
 * link to the leader is down), the write is answered anyway: the leader
 * has made it durable. The leader's errors come back as they were, and a
 * leader that cannot be reached is UNAVAILABLE, which agents retry.
 */
export function forwardedWrites(leader: LeaderWrites, leaderUrl: string, registry: Registry): Pick<ServiceImpl<typeof RegistryService>, WriteMethod> {
  async function forward<T extends object>(context: HandlerContext, send: (options: CallOptions) => Promise<T>): Promise<T> {
    const authorization = context.requestHeader.get("authorization");
    let answer: T;
    try {
      answer = await send({ signal: context.signal, headers: authorization === null ? {} : { authorization } });
    } catch (error) {
      throw leaderError(error, leaderUrl);
    }
    // ReleaseExpiryHold changes no instance: it has no revision to wait for.
    const revision = "revision" in answer && typeof answer.revision === "bigint" ? Number(answer.revision) : 0;
    // A caller that cancels meanwhile is not watched for: the wait ends within copyWaitMs, and its answer is dropped.
    if (registry.currentRevision() < revision) await registry.reached(revision, AbortSignal.timeout(copyWaitMs));
    return answer;
  }
  return {
    register: (request, context) => forward(context, (options) => leader.register(request, options)),
    heartbeat: (request, context) => forward(context, (options) => leader.heartbeat(request, options)),
    drain: (request, context) => forward(context, (options) => leader.drain(request, options)),
    undrain: (request, context) => forward(context, (options) => leader.undrain(request, options)),
    deregister: (request, context) => forward(context, (options) => leader.deregister(request, options)),
    releaseExpiryHold: (request, context) => forward(context, (options) => leader.releaseExpiryHold(request, options)),
  };
}

/**
 * The leader's answer as this follower's: the same code and message, without
 * the leader's response headers (which a ConnectError carries as metadata,
 * and which would otherwise be sent back as this call's own).
 */
function leaderError(error: unknown, leaderUrl: string): ConnectError {
  const cause = ConnectError.from(error);
  if (cause.code === Code.Unavailable) return new ConnectError(`this follower could not send the write to its leader ${leaderUrl}: ${cause.rawMessage}`, Code.Unavailable);
  return new ConnectError(cause.rawMessage, cause.code);
}
