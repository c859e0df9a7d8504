import { resolve } from "node:path";
import { pino } from "pino";
import { parseHostPort } from "./server/host-port.js";
import { ListenError, startRegistryServer } from "./server/registry-server.js";
import { StoreError } from "./store/store-error.js";

/*
 * `npm start`: serves on MUSTER_ADDR (default 127.0.0.1:6878) with data in
 * MUSTER_DATA_DIR (default ./muster-data). Startup problems a person can fix
 * print one line and exit 1; SIGINT/SIGTERM shut down cleanly.
 */
const logger = pino({ name: "muster" });

async function main(): Promise<void> {
  const { host, port } = parseHostPort("MUSTER_ADDR", process.env.MUSTER_ADDR ?? "127.0.0.1:6878");
  const dataDir = resolve(process.env.MUSTER_DATA_DIR ?? "muster-data");
  const running = await startRegistryServer({ host, port, dataDir, logger });
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130);
    logger.info({ signal }, "shutting down");
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((error: unknown) => {
  const explained = error instanceof StoreError || error instanceof ListenError || error instanceof RangeError;
  process.stderr.write(`muster: ${explained ? error.message : String(error)}\n`);
  if (!explained) logger.error({ err: error }, "failed to start");
  process.exit(1);
});
