/**
 * Stable codes for why the data directory cannot be used, in the manner of
 * classic-level: callers branch on `code`, people read `message`.
 */
export type StoreErrorCode = "locked" | "corrupt" | "io" | "missing";

/** A persistence failure, phrased as a sentence a person can act on. */
export class StoreError extends Error {
  override readonly name = "StoreError";

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Turns a LevelDB open failure into a StoreError that says what to do. */
export function explainOpenError(directory: string, error: unknown): StoreError {
  const code = levelCode(error);
  if (code === "LEVEL_LOCKED") {
    return new StoreError(
      "locked",
      `data directory ${directory} is in use by another muster process; stop that process or choose another data directory (MUSTER_DATA_DIR)`,
      { cause: error },
    );
  }
  if (code === "LEVEL_CORRUPTION") {
    return new StoreError(
      "corrupt",
      `data directory ${directory} is damaged (${rootMessage(error)}); muster will not serve possibly wrong data: ${recovery(directory)}`,
      { cause: error },
    );
  }
  return new StoreError("io", `cannot open data directory ${directory}: ${fileProblem(error) ?? rootMessage(error)}`, { cause: error });
}

/** Node's file errors that a person fixes by choosing another path, in words. */
const fileProblems: Readonly<Record<string, string>> = {
  EEXIST: "a file has that name; give the path of a directory, or of one to create",
  ENOTDIR: "a part of the path is a file, not a directory",
  EACCES: "permission denied; give a directory this user may write",
  EPERM: "not permitted; give a directory this user may write",
  EROFS: "the file system is read-only",
  ENOENT: "this file system does not let a directory be made there (as under /proc)",
};

function fileProblem(error: unknown): string | undefined {
  const code = (rootCause(error) as NodeJS.ErrnoException).code;
  return code === undefined ? undefined : fileProblems[code];
}

/** A value that does not decode means the directory holds something muster did not write. */
export function corruptValue(directory: string, key: string, error: unknown): StoreError {
  return new StoreError(
    "corrupt",
    `data directory ${directory} is damaged: the entry ${JSON.stringify(key)} cannot be read (${rootMessage(error)}); ${recovery(directory)}`,
    { cause: error },
  );
}

/** What a person does about a damaged data directory. */
export function recovery(directory: string): string {
  return `run 'muster repair --data-dir ${directory}', or restore a backup into an empty directory`;
}

/** A corruption LevelDB found while reading, as a StoreError; other errors pass through. */
export function explainReadError(directory: string, error: unknown): unknown {
  return levelCode(error) === "LEVEL_CORRUPTION" ? explainOpenError(directory, error) : error;
}

function levelCode(error: unknown): string | undefined {
  for (let current = error; current instanceof Error; current = current.cause) {
    const code = (current as Error & { code?: unknown }).code;
    if (code === "LEVEL_LOCKED" || code === "LEVEL_CORRUPTION") return code;
  }
  return undefined;
}

/** The innermost error of a `cause` chain: LevelDB's own, or Node's with its errno code. */
function rootCause(error: unknown): unknown {
  let current = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current;
}

function rootMessage(error: unknown): string {
  const root = rootCause(error);
  return root instanceof Error ? root.message : String(root);
}
