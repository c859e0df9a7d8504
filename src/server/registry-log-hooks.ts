import type { Logger } from "pino";
import type { RegistryOptions } from "../domain/registry.js";

/**
 * What the registry tells an operator without being asked, as log lines:
 * failed background writes, writes failing and recovering, and the
 * mass-expiry hold starting, released by hand and lifting.
 */
export function registryLogHooks(logger: Logger): Pick<RegistryOptions, "onBackgroundError" | "onWriteFailureChange" | "onExpiryHoldChange"> {
  return {
    onBackgroundError: (error) => logger.error({ err: error }, "background write failed"),
    onWriteFailureChange: (failure, ended) => {
      if (failure !== undefined) logger.error({ reason: failure.reason }, "writes failing: changes are refused until the data directory takes writes again; `muster status` shows the reason");
      else if (ended !== undefined) logger.warn({ failedCommits: ended.failedCommits, failingMs: Date.now() - ended.since }, "writes recovered: the data directory takes writes again");
    },
    onExpiryHoldChange: ({ holding, released, silent, instances }) => {
      if (holding) logger.warn({ silent, instances }, "mass expiry held: so many instances went silent at once that the registry's own network is the likely fault; silent instances stay UNHEALTHY but are not removed until heartbeats return or `muster release-expiry-hold`");
      else if (released) logger.warn({ silent, instances }, "mass expiry hold released by an operator: silent instances will expire");
      else logger.info({ silent, instances }, "mass expiry hold lifted: heartbeats returned");
    },
  };
}
