import { Command, CommanderError } from "commander";
import { musterVersion } from "../version.js";
import { CliError } from "./cli-error.js";
import { backupCommand } from "./commands/backup.js";
import { deregisterCommand } from "./commands/deregister.js";
import { drainCommand, undrainCommand } from "./commands/drain.js";
import { lsCommand } from "./commands/ls.js";
import { registerCommand } from "./commands/register.js";
import { repairCommand } from "./commands/repair.js";
import { restoreCommand } from "./commands/restore.js";
import { releaseExpiryHoldCommand } from "./commands/release-expiry-hold.js";
import { serveCommand } from "./commands/serve.js";
import { servicesCommand } from "./commands/services.js";
import { statusCommand } from "./commands/status.js";
import { watchCommand } from "./commands/watch.js";

/** What the executable lends the command line. */
export interface CliHooks {
  /**
   * Called by `serve` once it has answered its first call, before it changes
   * any V8 flag: the moment a code cache made in this process holds the
   * serving path and still matches a fresh start's flags (default: nothing).
   */
  readonly servingWarm?: () => void;
}

/*
 * The `muster` binary. Every failure a person can fix prints one line,
 * `muster: what happened and what to do`, and exits non-zero; a stack trace
 * only with --log-level debug (or MUSTER_LOG_LEVEL=debug).
 */
function createProgram(hooks: CliHooks): Command {
  const program = new Command("muster")
    .description("a service registry for services and AI agents")
    .version(musterVersion)
    // Program options only before the command, so `muster ls --version '>=1.2'` filters instead of printing ours.
    .enablePositionalOptions()
    .addHelpText("after", "\nExamples:\n  $ muster serve\n  $ muster ls payments\n  $ muster watch --all\n  $ muster register web --address 127.0.0.1:8080\n")
    .configureOutput({ outputError: (text, write) => write(`muster: ${withPlacementHint(text.replace(/^error: /, ""))}`) })
    .exitOverride();
  for (const command of [serveCommand(hooks.servingWarm), lsCommand(), servicesCommand(), watchCommand(), registerCommand(), deregisterCommand(), drainCommand(), undrainCommand(), statusCommand(), releaseExpiryHoldCommand(), backupCommand(), restoreCommand(), repairCommand()]) {
    program.addCommand(command.configureOutput({ outputError: (text, write) => write(`muster: ${text.replace(/^error: /, "")}`) }).exitOverride());
  }
  return program;
}

/**
 * An option the program does not know came before the command (`muster
 * --registry URL ls`): every option belongs to a command, so say where it goes.
 * `-v` is what many tools take for their version, so that one is pointed there.
 */
function withPlacementHint(message: string): string {
  if (!message.startsWith("unknown option")) return message;
  const hint = message.startsWith("unknown option '-v'") ? "the version is `muster --version` (or -V)" : "options go after the command, as in `muster ls --registry URL`";
  return message.replace(/\n?$/, `; ${hint}\n`);
}

function debugging(): boolean {
  const level = process.argv[process.argv.indexOf("--log-level") + 1] ?? process.env.MUSTER_LOG_LEVEL;
  return level === "debug" || level === "trace";
}

/**
 * Runs the `muster` command line on `process.argv` and exits the process
 * with its status. The executable (`bin.ts`) calls it once it has loaded the
 * bundle.
 */
export async function runCli(hooks: CliHooks = {}): Promise<never> {
  // A reader that stops early (`muster ls | head -1`) has all it wanted: end quietly, not with a stack trace.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(0);
  });
  try {
    await createProgram(hooks).parseAsync();
    process.exit(0);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    if (error instanceof CliError) {
      process.stderr.write(`muster: ${error.message}\n`);
      if (debugging() && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
      process.exit(error.exitCode);
    }
    process.stderr.write(`muster: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (debugging() && error instanceof Error && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  }
}
