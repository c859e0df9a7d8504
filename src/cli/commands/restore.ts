import { resolve } from "node:path";
import { Command } from "commander";
import { StoreError } from "../../store/store-error.js";
import { CliError } from "../cli-error.js";
import { print } from "../command-kit.js";
import { restoreBackup } from "../backup-file.js";
import { counted } from "../format.js";

/** `muster restore FILE`: loads a backup into an empty data directory, offline. */
export function restoreCommand(): Command {
  return new Command("restore")
    .description("load a backup into an empty data directory (with no registry running on it)")
    .argument("<file>", "a file written by 'muster backup'")
    .option("--data-dir <dir>", "the data directory to fill (MUSTER_DATA_DIR; default ./muster-data)")
    .addHelpText("after", "\nExamples:\n  $ muster restore muster-backup.json --data-dir ./muster-data\n  $ muster restore muster-backup.json && muster serve\n")
    .action(async (file: string, flags: { dataDir?: string }) => {
      const dataDir = resolve(flags.dataDir ?? process.env.MUSTER_DATA_DIR ?? "muster-data");
      const restored = await restoreBackup(file, dataDir).catch((error: unknown) => {
        if (error instanceof StoreError) throw new CliError(error.message);
        throw error;
      });
      print(`restored ${counted(restored.instances, "instance")} at revision ${restored.revision} into ${dataDir}; start it with 'muster serve --data-dir ${dataDir}'`);
    });
}
