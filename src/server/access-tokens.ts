import { createHash } from "node:crypto";
import type { Message } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { isServiceName } from "../domain/rules.js";
import { RegisterRequestSchema, RegistryService, type RegisterRequest } from "../../gen/muster/v1/registry_pb.js";

/** What a token lets its holder do: `read` is Discover, Watch and Status; `write` is everything. */
export type AccessRole = "read" | "write";

/**
 * The bearer tokens the registry accepts, each with its role. Kept as
 * SHA-256 digests, so a lookup takes the same time whatever the token
 * shares with a real one.
 */
export interface AccessTokens {
  readonly roles: ReadonlyMap<string, AccessRole>;
  /** The services each limited write token may change; a write token not here may change any. */
  readonly services: ReadonlyMap<string, ReadonlySet<string>>;
}

/** RegistryService's methods that change nothing; the others need a write token. */
const readMethods = new Set(RegistryService.methods.filter((method) => method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS || method.methodKind === "server_streaming").map((method) => method.name));
const shortestToken = 16;

function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Reads a token file: one token per line, `write <token>` or `read
 * <token>`; blank lines and `#` comments are skipped. A write token may be
 * limited to some services, named after it (`write <token> payments
 * orders`): a team's agents then cannot register, drain or deregister
 * another team's services. Several tokens of a role let one be replaced
 * without a gap. Throws a sentence naming the line for anything else, and
 * for tokens under 16 characters.
 */
export function parseAccessTokens(text: string): AccessTokens {
  const roles = new Map<string, AccessRole>();
  const services = new Map<string, ReadonlySet<string>>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [role, token, ...limit] = line.split(/\s+/);
    if ((role !== "read" && role !== "write") || token === undefined) {
      throw new TypeError(`line ${index + 1} of the token file must be "read <token>", "write <token>" or "write <token> <service> ..."`);
    }
    if (token.length < shortestToken) throw new TypeError(`line ${index + 1} of the token file: a token must have at least ${shortestToken} characters (openssl rand -hex 32 makes a good one)`);
    if (role === "read" && limit.length > 0) throw new TypeError(`line ${index + 1} of the token file: a read token reads every service; only a write token may be limited to some`);
    const notService = limit.find((name) => !isServiceName(name));
    if (notService !== undefined) throw new TypeError(`line ${index + 1} of the token file: "${notService}" is not a service name (a DNS-1123 label)`);
    roles.set(digest(token), role);
    if (limit.length > 0) services.set(digest(token), new Set(limit));
  });
  if (roles.size === 0) throw new TypeError("the token file holds no token; add lines such as \"write <token>\"");
  return { roles, services };
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
  const token = bearerToken(authorization);
  const role = token === undefined ? undefined : tokens.roles.get(digest(token));
  if (role === undefined) {
    const why = token === undefined ? "a token is required" : "the token is not one of the registry's";
    return new ConnectError(`${why}: send the header "authorization: Bearer <token>" (the SDK's token option, MUSTER_TOKEN for the CLI)`, Code.Unauthenticated);
  }
  if (role === "read" && !readMethods.has(method)) return new ConnectError(`the token may only read; ${method} needs a write token`, Code.PermissionDenied);
  return undefined;
}

/**
 * Why a write token limited to some services (see `parseAccessTokens`) may
 * not make this call, with its request read, or undefined when it may. The
 * service is in the request, so this comes after `refusal`, once the
 * request is decoded.
 */
export function serviceRefusal(tokens: AccessTokens, procedure: string, authorization: string | null | undefined, request: Message): ConnectError | undefined {
  if (tokens.services.size === 0 || !isGuarded(procedure)) return undefined;
  const method = procedure.slice(guardedPrefix.length);
  const token = bearerToken(authorization);
  const services = readMethods.has(method) || token === undefined ? undefined : tokens.services.get(digest(token));
  if (services === undefined) return undefined;
  // Only ReleaseExpiryHold names no service: it changes the whole registry.
  const service = request.$typeName === RegisterRequestSchema.typeName ? ((request as RegisterRequest).instance?.service ?? "") : (request as Partial<Record<"service", string>>).service;
  if (service !== undefined && services.has(service)) return undefined;
  const allowed = `the token may change only ${[...services].join(", ")}`;
  return new ConnectError(service === undefined ? `${allowed}; ${method} changes the whole registry` : `${allowed}, not "${service}"`, Code.PermissionDenied);
}

/** The token of an Authorization header; the scheme's name is case-insensitive (RFC 9110). */
function bearerToken(authorization: string | null | undefined): string | undefined {
  return /^bearer +(\S+) *$/i.exec(authorization ?? "")?.[1];
}
