import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A failure the user can act on: printed as one line, `muster: <message>`,
 * with no stack trace, and the process exits with `exitCode`.
 */
export class CliError extends Error {
  override readonly name = "CliError";

  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const fileProblems: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory",
  ENOSPC: "the disk is full",
  EROFS: "the file system is read-only",
};

/** Why a file could not be read or written, in words (`ENOENT` becomes "no such file or directory"); the raw code for anything rarer. */
export function describeFileError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === undefined) return String(error);
  return fileProblems[code] ?? code;
}

/** A file a setting names, or a one-line CliError saying which setting and why it cannot be read. */
export function readSettingFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CliError(`cannot read the ${what} ${path}: ${describeFileError(error)}`);
  }
}

const unreachableCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ECONNRESET", "EAI_AGAIN", "ETIMEDOUT"]);

/** The registries a --registry value names, in order: one URL, or several comma-separated. */
export function registryList(registries: string): string[] {
  return registries
    .split(",")
    .map((url) => url.trim())
    .filter((url) => url !== "");
}

/**
 * Turns a failed call to the registry into a sentence that says what to do.
 * Of several registries, it names the one the call failed on when the error
 * says which, or all of them once `triedAll`.
 */
export function explainCallError(error: unknown, registries: string, triedAll = false): CliError {
  const urls = registryList(registries);
  const registryUrl = urls.length === 1 || triedAll ? urls.join(" or ") : (failedRegistry(error, urls) ?? urls.join(" or "));
  const connectError = ConnectError.from(error);
  const tlsProblem = tlsCause(error);
  if (tlsProblem?.code === "ERR_SSL_WRONG_VERSION_NUMBER") {
    return new CliError(`the registry at ${registryUrl} does not speak TLS; use http:// in --registry (MUSTER_REGISTRY)`);
  }
  if (tlsProblem !== undefined) {
    return new CliError(`the registry at ${registryUrl} has a certificate this machine does not trust (${tlsProblem.message}); if a private CA signed it, run with NODE_EXTRA_CA_CERTS=<that CA's PEM file>`);
  }
  const cause = rootCause(error);
  if (connectError.code === Code.Unavailable && (cause === undefined || unreachableCodes.has(cause) || connectError.rawMessage.includes("connect"))) {
    const why = cause === undefined ? connectError.rawMessage : cause === "ECONNREFUSED" ? "connection refused" : cause;
    return new CliError(`cannot reach the registry at ${registryUrl} (${why}); start one with 'muster serve' or point --registry (MUSTER_REGISTRY) at it`);
  }
  if (connectError.code === Code.DeadlineExceeded) {
    return new CliError(`the registry at ${registryUrl} did not answer in time; is it overloaded, or is --registry pointing elsewhere?`);
  }
  if (connectError.code === Code.Unauthenticated && connectError.rawMessage.includes("client certificate")) {
    return new CliError(`the registry at ${registryUrl} refused the call: ${connectError.rawMessage.replace(/: this registry takes .*$/, "")}; set MUSTER_TLS_CLIENT_CERT and MUSTER_TLS_CLIENT_KEY to a certificate its client CA signed and its key`);
  }
  if (connectError.code === Code.Unauthenticated) {
    return new CliError(`the registry at ${registryUrl} refused the call: ${connectError.rawMessage.replace(/: send the header .*$/, "")}; set MUSTER_TOKEN to a token from its token file`);
  }
  if (connectError.code === Code.NotFound || connectError.code === Code.InvalidArgument || connectError.code === Code.PermissionDenied) return new CliError(connectError.rawMessage);
  return new CliError(`the registry answered ${Code[connectError.code]}: ${connectError.rawMessage}`);
}

/** OpenSSL's certificate verdicts have codes such as CERT_HAS_EXPIRED or UNABLE_TO_VERIFY_LEAF_SIGNATURE, Node's own ERR_TLS_* or ERR_SSL_*. */
function tlsCause(error: unknown): NodeJS.ErrnoException | undefined {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_)|CERT/.test(code)) return current;
  }
  return undefined;
}

/** Which of `urls` a connection error came from, when it carries the address it tried. */
function failedRegistry(error: unknown, urls: readonly string[]): string | undefined {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const { address, port } = current as { address?: unknown; port?: unknown };
    if (typeof address !== "string" || typeof port !== "number") continue;
    return urls.find((url) => {
      const { hostname, port: urlPort, protocol } = new URL(url);
      return hostname.replace(/^\[|\]$/g, "") === address && Number(urlPort || (protocol === "https:" ? 443 : 80)) === port;
    });
  }
  return undefined;
}

function rootCause(error: unknown): string | undefined {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && unreachableCodes.has(code)) return code;
  }
  return undefined;
}
