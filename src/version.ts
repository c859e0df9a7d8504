import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * muster's release, from its package.json. Looked up by walking up from this
 * module, since it runs both from src/ (tests) and from dist/src/ (built).
 */
export const musterVersion: string = findVersion(dirname(fileURLToPath(import.meta.url)));

function findVersion(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      const manifest = JSON.parse(readFileSync(candidate, "utf8")) as { name?: string; version?: string };
      if (manifest.name === "muster" && manifest.version !== undefined) return manifest.version;
    }
    if (dirname(dir) === dir) return "unknown";
  }
}
