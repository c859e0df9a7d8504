import { resolve } from "node:path";
import { Command } from "commander";
import { repairDataDirectory } from "../../store/repair.js";
import { StoreError } from "../../store/store-error.js";
import { CliError } from "../cli-error.js";
import { print } from "../command-kit.js";
import { counted } from "../format.js";

/** `muster repair`: salvages a damaged data directory so the registry can start. */
export function repairCommand(): Command {
  return new Command("repair")
    .description("repair a damaged data directory (stop the registry first); reports what was recovered")
    .option("--data-dir <dir>", "the data directory (MUSTER_DATA_DIR; default ./muster-data)")
    .addHelpText("after", "\nExamples:\n  $ muster repair --data-dir ./muster-data && muster serve --data-dir ./muster-data\n")
    .action(async (flags: { dataDir?: string }) => {
      const dataDir = resolve(flags.dataDir ?? process.env.MUSTER_DATA_DIR ?? "muster-data");
      const report = await repairDataDirectory(dataDir).catch((error: unknown) => {
        if (error instanceof StoreError) throw new CliError(error.message);
        throw error;
      });
      print(
        `repaired ${dataDir}: kept ${counted(report.instances, "instance")} and ${counted(report.events, "event")} at revision ${report.revision}; dropped ${counted(report.dropped, "damaged or orphaned entry", "damaged or orphaned entries")}. Start it with 'muster serve --data-dir ${dataDir}'`,
      );
    });
}
