import type { Http2Session } from "node:http2";

/** How the server finds the clients that went away without closing their connections. */
export interface PeerCheckPolicy {
  /** Each HTTP/2 connection gets a PING this often. Default 60s; `Infinity` sends none. */
  readonly intervalMs: number;
  /** A PING unanswered this long closes the connection, and its calls and watch streams with it. Default 20s. */
  readonly timeoutMs: number;
  /** A new connection must send its first bytes (which tell HTTP/2 from HTTP/1.1) within this long. Default 30s. */
  readonly firstBytesMs: number;
}

/** Generous enough for a client whose event loop stalls for seconds; 10,000 connections make about 170 PINGs a second. */
export const defaultPeerCheck: PeerCheckPolicy = { intervalMs: 60_000, timeoutMs: 20_000, firstBytesMs: 30_000 };

/**
 * PINGs an HTTP/2 connection every `intervalMs` for as long as it is open,
 * and destroys it when a PING goes unanswered for `timeoutMs`. A client
 * that vanished without closing its connection (a partition, a host
 * powered off, a frozen process) otherwise keeps it, with its Watch streams
 * and their place in `Status.watchers`, until TCP gives up on a write,
 * about 15 minutes; and an agent's idle connection, which nothing is
 * written to, forever.
 */
export function checkPeer(session: Http2Session, policy: PeerCheckPolicy): void {
  // A timer longer than 2^31 - 1 ms would fire at once.
  if (!Number.isFinite(policy.intervalMs)) return;
  let unanswered: NodeJS.Timeout | undefined;
  const every = setInterval(() => {
    if (unanswered !== undefined || session.closed || session.destroyed) return;
    unanswered = setTimeout(() => session.destroy(), policy.timeoutMs).unref();
    session.ping(() => {
      clearTimeout(unanswered);
      unanswered = undefined;
    });
  }, policy.intervalMs).unref();
  session.once("close", () => {
    clearInterval(every);
    clearTimeout(unanswered);
  });
}
