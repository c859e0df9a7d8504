import { open, rename, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { defaultLivenessPolicy } from "../domain/instance-spec.js";
import { RegistryError } from "../domain/registry-error.js";
import { recordFromWire } from "../server/convert.js";
import { LevelStore } from "../store/level-store.js";
import { InstanceSchema, type Instance } from "../../gen/muster/v1/registry_pb.js";
import { CliError, describeFileError } from "./cli-error.js";

/*
 * A backup is one JSON file: every instance, in the API's JSON form, at one
 * revision. Restoring it into an empty data directory brings back the
 * instances and the revision counter (not the event log: watchers resuming
 * from older revisions get a snapshot).
 */

const format = "muster-backup";
const formatVersion = 1;

interface BackupFile {
  readonly format: typeof format;
  readonly version: typeof formatVersion;
  readonly revision: string;
  readonly createdAt: string;
  readonly instances: JsonValue[];
}

/**
 * Writes the backup atomically and durably: a half-written file never
 * replaces a good one, and once this resolves the backup survives a crash or
 * power loss. Without the syncs, a file system may put the rename on disk
 * before the data, leaving an empty backup where the last good one was.
 */
export async function writeBackup(path: string, instances: readonly Instance[], revision: bigint): Promise<void> {
  const backup: BackupFile = { format, version: formatVersion, revision: String(revision), createdAt: new Date().toISOString(), instances: instances.map((instance) => toJson(InstanceSchema, instance)) };
  const partial = `${path}.partial`;
  try {
    const file = await open(partial, "w");
    try {
      await file.writeFile(`${JSON.stringify(backup, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(partial, path);
    const directory = await open(dirname(resolve(path)), "r");
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } catch (error) {
    throw new CliError(`cannot write backup file ${path}: ${describeFileError(error)}`);
  }
}

/** Loads a backup into an empty data directory; returns what was restored. */
export async function restoreBackup(path: string, dataDir: string): Promise<{ instances: number; revision: number }> {
  const backup = await readBackup(path);
  const records = backup.instances.map((json, index) => {
    try {
      return recordFromWire(fromJson(InstanceSchema, json), defaultLivenessPolicy);
    } catch (error) {
      const why = error instanceof RegistryError ? error.message : (error as Error).message;
      throw new CliError(`backup file ${path}: instance ${index + 1} is not valid (${why}); nothing was restored`);
    }
  });
  const revision = Number(backup.revision);
  const store = await LevelStore.open(dataDir);
  try {
    const existing = await store.load();
    if (existing.revision !== 0 || existing.instances.length > 0) {
      throw new CliError(`data directory ${dataDir} already holds a registry (revision ${existing.revision}); restore into an empty directory`);
    }
    await store.commit({ revision, puts: records, deletes: [], events: [], dropEventsThrough: 0 });
  } finally {
    await store.close();
  }
  return { instances: records.length, revision };
}

async function readBackup(path: string): Promise<BackupFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new CliError(error instanceof SyntaxError ? `backup file ${path} is not valid JSON` : `cannot read backup file ${path}: ${describeFileError(error)}`);
  }
  const backup = parsed as Partial<BackupFile>;
  const revision = Number(backup.revision);
  if (backup.format !== format || backup.version !== formatVersion || !Array.isArray(backup.instances) || !Number.isSafeInteger(revision) || revision < 0) {
    throw new CliError(`${path} is not a muster backup (version ${formatVersion}); make one with 'muster backup FILE'`);
  }
  return backup as BackupFile;
}
