import type { Message } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { isGuarded, refusal, serviceRefusal, type AccessTokens } from "./access-tokens.js";
import { certificateRefusal, peerSocketKey, type PeerSocket } from "./client-certificates.js";

/** A stream let through by its token, and how to end it. */
interface HeldStream {
  readonly procedure: string;
  readonly authorization: string | undefined;
  readonly end: (error: ConnectError) => void;
}

/**
 * Who may call: a client certificate the registry's client CA signed, a
 * token of the right role, or both, as the registry was started. A call is
 * checked when it starts, but a Watch lasts for hours: when the tokens are
 * replaced (a reload after a token leaked, say), every open stream the new
 * tokens would refuse is ended with that refusal, so withdrawing a token
 * withdraws what it was reading too.
 */
export class AccessGuard {
  private readonly held = new Set<HeldStream>();

  constructor(
    private tokens: AccessTokens | undefined,
    /** Whether guarded calls need a client certificate (mutual TLS). */
    readonly clientCertificates: boolean,
  ) {}

  /** Why a call may not start now, or undefined when it may (see `refusal` and `certificateRefusal`). */
  refusal(procedure: string, authorization: string | null | undefined, peer?: PeerSocket): ConnectError | undefined {
    if (!isGuarded(procedure)) return undefined;
    return (this.clientCertificates ? certificateRefusal(peer) : undefined) ?? (this.tokens === undefined ? undefined : refusal(this.tokens, procedure, authorization));
  }

  /** Why a call let through by `refusal` may not change the service its request names (see `serviceRefusal`), or undefined when it may. */
  serviceRefusal(procedure: string, authorization: string | null | undefined, request: Message): ConnectError | undefined {
    return this.tokens === undefined ? undefined : serviceRefusal(this.tokens, procedure, authorization, request);
  }

  /**
   * Keeps a stream that was let through in view: `end` is told the refusal
   * if later tokens withdraw its access, at most once. Returns the function
   * to call when the stream ends by itself; calling it twice is harmless.
   */
  hold(procedure: string, authorization: string | null | undefined, end: (error: ConnectError) => void): () => void {
    const stream: HeldStream = { procedure, authorization: authorization ?? undefined, end };
    this.held.add(stream);
    return () => this.held.delete(stream);
  }

  /** Uses `tokens` for the calls that start from now on, and ends the open streams they refuse. Returns how many were ended. */
  replace(tokens: AccessTokens): number {
    this.tokens = tokens;
    let ended = 0;
    for (const stream of this.held) {
      // Its certificate was checked when it started, and a connection's certificate does not change.
      const refused = refusal(tokens, stream.procedure, stream.authorization);
      if (refused === undefined) continue;
      this.held.delete(stream);
      ended++;
      stream.end(new ConnectError(`the registry's tokens were replaced and this stream's token no longer allows it: ${refused.rawMessage}`, refused.code));
    }
    return ended;
  }
}

/** The guard for the calls Connect serves (Connect, gRPC-Web, gRPC with JSON or compression): refuses at the start, and holds streams. */
export function accessInterceptor(guard: AccessGuard): Interceptor {
  return (next) => async (request) => {
    const procedure = `/${request.service.typeName}/${request.method.name}`;
    const authorization = request.header.get("authorization");
    const refused = guard.refusal(procedure, authorization, request.contextValues.get(peerSocketKey)) ?? (request.stream ? undefined : guard.serviceRefusal(procedure, authorization, request.message));
    if (refused !== undefined) throw refused;
    const response = await next(request);
    if (!response.stream) return response;
    return { ...response, message: endedOnWithdrawal(response.message, (end) => guard.hold(procedure, authorization, end)) };
  };
}

/**
 * Answers that fail with the guard's refusal once it withdraws them, even
 * while waiting for the next one (an idle watcher may wait minutes), and
 * then stop the answers underneath. The hold is released when the answers
 * end, fail or are returned: Connect returns them when the client goes.
 */
function endedOnWithdrawal<T>(answers: AsyncIterable<T>, hold: (end: (error: ConnectError) => void) => () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const inner = answers[Symbol.asyncIterator]();
      let withdrawn: ConnectError | undefined;
      let failWaiting: ((error: ConnectError) => void) | undefined;
      const release = hold((error) => {
        withdrawn = error;
        failWaiting?.(error);
        void inner.return?.();
      });
      return {
        next: () =>
          new Promise<IteratorResult<T>>((resolve, reject) => {
            if (withdrawn !== undefined) return reject(withdrawn);
            failWaiting = reject;
            inner.next().then(
              (result) => {
                if (result.done === true) release();
                resolve(result);
              },
              (error: unknown) => {
                release();
                reject(error instanceof Error ? error : new Error(String(error)));
              },
            );
          }),
        return: (value?: unknown) => {
          release();
          return inner.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}
