import type { RegistryWatcher } from "../../src/client/watcher.js";

/** A watcher iterated in the background, as an application would, with counts a test can poll. */
export interface FollowedWatcher {
  /** Updates received so far, snapshots included. */
  readonly updates: number;
  readonly snapshots: number;
  /** Closes the watcher and waits for its iteration to end. */
  stop(): Promise<void>;
}

export function followWatcher(watcher: RegistryWatcher): FollowedWatcher {
  let updates = 0;
  let snapshots = 0;
  const following = (async () => {
    for await (const update of watcher) {
      updates++;
      if (update.snapshot) snapshots++;
    }
  })();
  return {
    get updates() {
      return updates;
    },
    get snapshots() {
      return snapshots;
    },
    async stop() {
      watcher.close();
      await following;
    },
  };
}
