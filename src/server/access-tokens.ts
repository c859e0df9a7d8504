import { createHash } from "node:crypto";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RegistryService } from "../../gen/muster/v1/registry_pb.js";

/** What a token lets its holder do: `read` is Discover, Watch and Status; `write` is everything. */
export type AccessRole = "read" | "write";

/**
 * The bearer tokens the registry accepts, each with its role. Kept as
 * SHA-256 digests, so a lookup takes the same time whatever the token
 * shares with a real one.
 */
export interface AccessTokens {
  readonly roles: ReadonlyMap<string, AccessRole>;
}

/** RegistryService's methods that change nothing; the others need a write token. */
const readMethods = new Set(RegistryService.methods.filter((method) => method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS || method.methodKind === "server_streaming").map((method) => method.name));
const shortestToken = 16;

function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Reads a token file: one token per line, `write <token>` or `read
 * <token>`; blank lines and `#` comments are skipped. Several tokens of a
 * role let one be replaced without a gap. Throws a sentence naming the line
 * for anything else, and for tokens under 16 characters.
 */
export function parseAccessTokens(text: string): AccessTokens {
  const roles = new Map<string, AccessRole>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [role, token, ...rest] = line.split(/\s+/);
    if ((role !== "read" && role !== "write") || token === undefined || rest.length > 0) {
      throw new TypeError(`line ${index + 1} of the token file must be "read <token>" or "write <token>"`);
    }
    if (token.length < shortestToken) throw new TypeError(`line ${index + 1} of the token file: a token must have at least ${shortestToken} characters (openssl rand -hex 32 makes a good one)`);
    roles.set(digest(token), role);
  });
  if (roles.size === 0) throw new TypeError("the token file holds no token; add lines such as \"write <token>\"");
  return { roles };
}

const guardedPrefix = `/${RegistryService.typeName}/`;

/**
 * Whether a call to `procedure` ("/muster.v1.RegistryService/Register") is
 * guarded. Only the registry's own service is: health checks come from load
 * balancers and orchestrators that send no token and hold no certificate,
 * and reflection serves only the schema.
 */
export function isGuarded(procedure: string): boolean {
  return procedure.startsWith(guardedPrefix);
}

/**
 * Why a call to `procedure` ("/muster.v1.RegistryService/Register") with
 * this Authorization header may not go ahead, or undefined when it may
 * (every call outside `isGuarded` may).
 */
export function refusal(tokens: AccessTokens, procedure: string, authorization: string | null | undefined): ConnectError | undefined {
  if (!isGuarded(procedure)) return undefined;
  const method = procedure.slice(guardedPrefix.length);
  // The scheme's name is case-insensitive (RFC 9110).
  const token = /^bearer +(\S+) *$/i.exec(authorization ?? "")?.[1];
  const role = token === undefined ? undefined : tokens.roles.get(digest(token));
  if (role === undefined) {
    const why = token === undefined ? "a token is required" : "the token is not one of the registry's";
    return new ConnectError(`${why}: send the header "authorization: Bearer <token>" (the SDK's token option, MUSTER_TOKEN for the CLI)`, Code.Unauthenticated);
  }
  if (role === "read" && !readMethods.has(method)) return new ConnectError(`the token may only read; ${method} needs a write token`, Code.PermissionDenied);
  return undefined;
}
