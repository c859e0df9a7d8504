import type { Logger } from "pino";
import type { RegistryOptions } from "../domain/registry.js";

/**
 * What the registry tells an operator without being asked, as log lines:
 * a history of its own started at open, failed background writes, writes
 * failing and recovering, and the mass-expiry hold starting, released by
 * hand and lifting.
 */
export function registryLogHooks(logger: Logger): Pick<RegistryOptions, "onBackgroundError" | "onWriteFailureChange" | "onExpiryHoldChange" | "onHistoryBranched"> {
  return {
    onHistoryBranched: ({ why, revision, from, to }) => {
      if (why === "promoted") logger.info({ revision, history: to, leaderHistory: from }, `taking writes of its own: this data directory followed a leader, so its changes after revision ${revision} count in a history of its own; the leader's watchers at or below ${revision} resume here, later ones get a snapshot`);
      else logger.warn({ revision, history: to, originalHistory: from }, `this data directory is not the one its history was made in (a copy by cp -r or a file backup put back, or a file system that renumbers directories): its changes after revision ${revision} count in a history of its own, so watchers of the original past ${revision} get a snapshot here rather than changes the two count differently`);
    },
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
