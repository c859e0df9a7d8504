import type { Command } from "commander";
import { callRegistry, clientCommand, print, type RegistryFlags } from "../command-kit.js";
import { writeBackup } from "../backup-file.js";
import { counted } from "../format.js";

/** `muster backup FILE`: a consistent snapshot of a serving registry. */
export function backupCommand(): Command {
  return clientCommand("backup", "write a consistent snapshot (every instance at one revision) of a serving registry to FILE", [
    "muster backup muster-backup.json",
    "muster backup /backups/muster-$(date +%F).json --registry http://10.0.0.5:6878",
  ])
    .argument("<file>", "where to write the backup (JSON)")
    .action(async (file: string, flags: RegistryFlags) => {
      const found = await callRegistry(flags, (client, options) => client.discover({ includeUnhealthy: true, includeDrained: true }, options));
      await writeBackup(file, found.instances, found.revision);
      print(`backed up ${counted(found.instances.length, "instance")} at revision ${found.revision} to ${file}`);
    });
}
