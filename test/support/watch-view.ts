import type { Instance, WatchResponse } from "../../gen/muster/v1/registry_pb.js";

/**
 * What a watcher believes: the instances in its view, maintained purely from
 * Watch messages as the protocol documents it. Tests compare it to Discover.
 */
export class WatchView {
  readonly instances = new Map<string, Instance>();
  revision = 0n;
  readonly seenRevisions: bigint[] = [];

  apply(message: WatchResponse): void {
    if (message.snapshot) this.instances.clear();
    for (const event of message.events) {
      const instance = event.instance;
      if (instance === undefined) throw new Error("event without instance");
      const key = `${instance.service}/${instance.id}`;
      if (!message.snapshot && !message.more) this.seenRevisions.push(event.revision);
      if (event.removed) this.instances.delete(key);
      else this.instances.set(key, instance);
    }
    if (!message.more) this.revision = message.revision;
  }

  /** A comparable summary: key, health, revision, sorted. */
  summary(): string[] {
    return [...this.instances.values()].map(summarize).sort();
  }
}

export function summarize(instance: Instance): string {
  return `${instance.service}/${instance.id} health=${instance.health} rev=${instance.revision}`;
}
