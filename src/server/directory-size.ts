import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** The bytes the files under `directory` take; files that vanish meanwhile count as 0. */
export async function directorySize(directory: string): Promise<number> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  const sizes = await Promise.all(
    entries.filter((entry) => entry.isFile()).map((entry) => stat(join(entry.parentPath, entry.name)).then((s) => s.size, () => 0)),
  );
  return sizes.reduce((sum, size) => sum + size, 0);
}
