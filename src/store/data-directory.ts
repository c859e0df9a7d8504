import { mkdir, readlink, stat } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Creates the data directory and any missing parents, as `mkdir -p` does,
 * before LevelDB opens it.
 *
 * Not `mkdir(directory, { recursive: true })`, which LevelDB's opener uses:
 * where mkdir answers ENOENT under a parent that exists (under /proc, for
 * one), Node's recursive mkdir retries forever, and `muster serve` would
 * hang without a word. Here each level is tried at most twice. The directory
 * or a parent that is a symbolic link to nothing (a disk not mounted) is
 * named as such.
 * Node's own errors (ENOTDIR, EACCES, EROFS, ENOENT) are thrown as they are,
 * for the store's error wording.
 */
export async function makeDataDirectory(directory: string): Promise<void> {
  try {
    await mkdir(directory);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return expectNoDanglingLink(directory);
    const parent = dirname(directory);
    if (code !== "ENOENT" || parent === directory) throw error;
    await makeDataDirectory(parent);
    await mkdir(directory).catch((again: unknown) => {
      if ((again as NodeJS.ErrnoException).code !== "EEXIST") throw again;
    });
  }
}

/** Something is at `path`; if it is a link whose target is missing, nothing can be made inside it. */
async function expectNoDanglingLink(path: string): Promise<void> {
  if ((await stat(path).catch(() => undefined)) !== undefined) return;
  const target = await readlink(path).catch(() => undefined);
  if (target === undefined) return;
  throw new Error(`${path} is a symbolic link to ${target}, which does not exist; create or mount it first`);
}
