/** Stable codes for why the registry could not listen, in the manner of `StoreError`'s. */
export type ListenErrorCode = "address-in-use" | "permission-denied" | "address-not-available" | "unknown-host" | "tls-credentials";

/** The registry could not listen: `code` to branch on, and a one-line message saying what to do. */
export class ListenError extends Error {
  override readonly name = "ListenError";

  constructor(
    readonly code: ListenErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What each of Node's listen failures means and what to do; other failures are unexpected. */
export const listenProblems: Readonly<Record<string, { code: ListenErrorCode; why: string }>> = {
  EADDRINUSE: { code: "address-in-use", why: "the address is already in use; stop the other process or set MUSTER_ADDR to a free host:port" },
  EACCES: { code: "permission-denied", why: "permission denied (ports below 1024 need privileges); set MUSTER_ADDR to a port above 1023" },
  EADDRNOTAVAIL: { code: "address-not-available", why: "this machine has no such address; listen on 127.0.0.1, 0.0.0.0 or one of its own addresses" },
  ENOTFOUND: { code: "unknown-host", why: "no such host name; give an IP address or a name this machine resolves" },
  EAI_AGAIN: { code: "unknown-host", why: "the host name could not be resolved now; give an IP address or try again" },
};
