import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The directory of muster's package.json, and the release it names. Looked
 * up by walking up from this module, since it runs both from src/ (tests)
 * and from dist/ (built); undefined if the package.json is gone.
 */
const found = findPackage(dirname(fileURLToPath(import.meta.url)));

/** muster's release, such as 0.1.0, from its package.json; "unknown" without one. */
export const musterVersion: string = found?.version ?? "unknown";

/** Where muster's files are (`ui/`, `dist/ui/`); undefined without its package.json. */
export const packageRoot: string | undefined = found?.root;

function findPackage(start: string): { root: string; version: string } | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      const manifest = JSON.parse(readFileSync(candidate, "utf8")) as { name?: string; version?: string };
      if (manifest.name === "muster" && manifest.version !== undefined) return { root: dir, version: manifest.version };
    }
    if (dirname(dir) === dir) return undefined;
  }
}
