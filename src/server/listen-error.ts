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

/** What each of Node's listen failures means and what to do, for an address set by `setting`; other failures are unexpected. */
const listenProblems: Readonly<Record<string, { code: ListenErrorCode; why: (setting: string) => string }>> = {
  EADDRINUSE: { code: "address-in-use", why: (setting) => `the address is already in use; stop the other process or set ${setting} to a free host:port` },
  EACCES: { code: "permission-denied", why: (setting) => `permission denied (ports below 1024 need privileges); set ${setting} to a port above 1023` },
  EADDRNOTAVAIL: { code: "address-not-available", why: () => "this machine has no such address; listen on 127.0.0.1, 0.0.0.0 or one of its own addresses" },
  ENOTFOUND: { code: "unknown-host", why: () => "no such host name; give an IP address or a name this machine resolves" },
  EAI_AGAIN: { code: "unknown-host", why: () => "the host name could not be resolved now; give an IP address or try again" },
};

/**
 * Runs `listen`, turning Node's failures into a ListenError such as "cannot
 * listen on 127.0.0.1:6878: the address is already in use; ...", where
 * `what` is "listen on 127.0.0.1:6878" and `setting` the variable to change.
 */
export async function explainListen<T>(what: string, setting: string, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    const problem = listenProblems[(error as NodeJS.ErrnoException).code ?? ""];
    if (problem === undefined) throw error;
    throw new ListenError(problem.code, `cannot ${what}: ${problem.why(setting)}`);
  }
}
