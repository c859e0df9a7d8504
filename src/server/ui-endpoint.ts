import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { packageRoot } from "../version.js";
import type { DualHandler } from "./dual-protocol-server.js";

/** The dashboard's files: its page and style as written in ui/, its scripts as `npm run build` compiles them into dist/ui/. */
const assets: ReadonlyMap<string, { readonly file: string; readonly type: string }> = new Map([
  ["/ui", { file: "ui/index.html", type: "text/html; charset=utf-8" }],
  ["/ui/", { file: "ui/index.html", type: "text/html; charset=utf-8" }],
  ["/ui/style.css", { file: "ui/style.css", type: "text/css; charset=utf-8" }],
  ["/ui/page.js", { file: "dist/ui/page.js", type: "text/javascript; charset=utf-8" }],
  ["/ui/view.js", { file: "dist/ui/view.js", type: "text/javascript; charset=utf-8" }],
]);

/** Scripts, styles and calls only from the registry itself, and no framing: a page that runs operators' actions must not be embedded elsewhere. */
const pageHeaders = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

/**
 * A layer that serves the dashboard at `GET /ui` (and sends a browser that
 * asks for `/` there), in front of a handler. The page holds no data: it
 * calls the registry's own API from the browser, with the token its user
 * gives under access tokens, so it needs no guard of its own. Files are
 * read at their first request, not at start-up.
 */
export function uiLayer(root = packageRoot): (handler: DualHandler) => DualHandler {
  const cache = new Map<string, Promise<Buffer>>();
  return (handler) => (request, response) => {
    const target = request.url ?? "/";
    const queryAt = target.indexOf("?");
    const path = queryAt === -1 ? target : target.slice(0, queryAt);
    if (request.method === "GET" && path === "/") {
      response.writeHead(302, { Location: "/ui" });
      response.end();
      return;
    }
    const asset = assets.get(path);
    if (asset === undefined || request.method !== "GET") return handler(request, response);
    let content = cache.get(asset.file);
    if (content === undefined) {
      content = readFile(join(root ?? ".", asset.file));
      cache.set(asset.file, content);
    }
    content.then(
      (body) => {
        response.writeHead(200, { "Content-Type": asset.type, ...pageHeaders });
        response.end(body);
      },
      (error: unknown) => {
        cache.delete(asset.file);
        response.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
        response.end(`the dashboard's ${asset.file} cannot be read (${error instanceof Error ? error.message : String(error)}); 'npm run build' makes dist/ui\n`);
      },
    );
  };
}
