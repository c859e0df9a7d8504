import type http from "node:http";
import type http2 from "node:http2";
import { cors } from "@connectrpc/connect";
import type { DualHandler } from "./dual-protocol-server.js";

/**
 * Which web pages may call the registry from a browser (Connect or
 * gRPC-Web through `fetch`). A page is always served from another origin
 * than the registry, which serves no pages, so without this a browser
 * refuses every call at its preflight.
 */
export interface CorsPolicy {
  /**
   * Origins such as `https://dash.example.com` or `http://localhost:5173`,
   * `https://*.example.com` for every subdomain of example.com (at any depth,
   * over that scheme and port, not example.com itself), or `*` for any page.
   * Default none: the registry takes writes, so which pages may call it is
   * the operator's choice.
   */
  readonly allowedOrigins: readonly string[];
}

const exposedHeaders = cors.exposedHeaders.join(", ");
/** Browsers cache a preflight for at most 2 hours (Chromium) or 1 day (Firefox). */
const preflightMaxAgeSeconds = 7200;

/** A subdomain wildcard's `*.`, checked as an ordinary first label. */
const wildcardLabel = /^(https?:\/\/)\*\./i;
const standInLabel = "wildcard-label.";

/**
 * An origin as browsers send it in the Origin header (`new URL().origin`):
 * scheme, host and a port other than the default; or such an origin whose
 * host starts with `*.`. Throws a sentence for anything else, such as a
 * path, which an Origin never has.
 */
export function normalizeOrigin(origin: string): string {
  if (origin === "*") return origin;
  const wildcard = wildcardLabel.test(origin);
  const checked = wildcard ? origin.replace(wildcardLabel, `$1${standInLabel}`) : origin;
  let url: URL | undefined;
  try {
    url = new URL(checked);
  } catch {
    url = undefined;
  }
  const bare = url !== undefined && (url.protocol === "http:" || url.protocol === "https:") && url.pathname === "/" && url.search === "" && url.hash === "" && url.username === "" && !checked.endsWith("/") && !url.hostname.includes("*");
  if (url === undefined || !bare) throw new TypeError(`CORS origin "${origin}" must be "*" or a scheme, host and optional port, such as https://dash.example.com, http://localhost:5173 or https://*.example.com`);
  return wildcard ? url.origin.replace(`//${standInLabel}`, "//*.") : url.origin;
}

/** Whether a browser's Origin is a subdomain of a normalized `https://*.example.com[:port]`. */
function matchesWildcard(origin: string, pattern: string): boolean {
  const [scheme, suffix] = pattern.split("//*") as [string, string];
  if (!origin.startsWith(`${scheme}//`) || !origin.endsWith(suffix)) return false;
  const subdomain = origin.slice(scheme.length + 2, origin.length - suffix.length);
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(subdomain);
}

/**
 * A layer that answers browsers' CORS preflights and marks the answers to
 * allowed origins, in front of a handler. A preflight from an origin not
 * allowed gets 403 with a sentence saying how to allow it, which a developer
 * sees in the browser's network panel. Calls without an Origin header
 * (every client that is not a browser) pass untouched. Throws at once for
 * an origin `normalizeOrigin` refuses.
 */
export function corsLayer(policy: CorsPolicy): (handler: DualHandler) => DualHandler {
  const origins = new Set(policy.allowedOrigins.map(normalizeOrigin));
  const anyOrigin = origins.has("*");
  const wildcards = [...origins].filter((origin) => origin.includes("//*."));
  return (handler) => (request, response) => {
    const origin = request.headers.origin;
    if (origin === undefined) return handler(request, response);
    const allowed = anyOrigin || origins.has(origin) || wildcards.some((pattern) => matchesWildcard(origin, pattern));
    if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
      answerPreflight(request, response, origin, allowed, anyOrigin);
      return;
    }
    if (allowed) {
      response.setHeader("Access-Control-Allow-Origin", anyOrigin ? "*" : origin);
      response.setHeader("Access-Control-Expose-Headers", exposedHeaders);
    }
    if (!anyOrigin) response.setHeader("Vary", "Origin");
    handler(request, response);
  };
}

function answerPreflight(
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
  origin: string,
  allowed: boolean,
  anyOrigin: boolean,
): void {
  if (!anyOrigin) response.setHeader("Vary", "Origin");
  if (!allowed) {
    response.writeHead(403, { "Content-Type": "text/plain; charset=utf-8" });
    response.end(`origin ${origin} may not call this registry; start it with --cors-origin ${origin} (MUSTER_CORS_ORIGINS), or "*" for any page\n`);
    return;
  }
  // The origin is trusted, so whatever headers its client sends (an interceptor's own, too) are allowed.
  const requestedHeaders = request.headers["access-control-request-headers"];
  const headers: Record<string, string> = {
    "Access-Control-Allow-Origin": anyOrigin ? "*" : origin,
    "Access-Control-Allow-Methods": cors.allowedMethods.join(", "),
    "Access-Control-Allow-Headers": typeof requestedHeaders === "string" ? requestedHeaders : cors.allowedHeaders.join(", "),
    "Access-Control-Max-Age": String(preflightMaxAgeSeconds),
  };
  // Chromium asks before a public page may call an address on a private network, such as a registry on 10.x or localhost.
  if (request.headers["access-control-request-private-network"] === "true") headers["Access-Control-Allow-Private-Network"] = "true";
  response.writeHead(204, headers);
  response.end();
}
