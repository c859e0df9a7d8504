import { EventType, HealthStatus, type Event, type Instance, type WatchResponse } from "../../gen/muster/v1/registry_pb.js";

/**
 * What a watcher believes: the instances in its view, maintained purely from
 * Watch messages as the protocol documents it. Tests compare it to Discover.
 */
export class WatchView {
  readonly instances = new Map<string, Instance>();
  revision = 0n;
  readonly seenRevisions: bigint[] = [];
  /** Events that could not follow what this view had (see `contradiction`). */
  readonly contradictions: string[] = [];

  apply(message: WatchResponse): void {
    if (message.snapshot) this.instances.clear();
    for (const event of message.events) {
      const instance = event.instance;
      if (instance === undefined) throw new Error("event without instance");
      const key = `${instance.service}/${instance.id}`;
      if (!message.snapshot && !message.more) this.seenRevisions.push(event.revision);
      const contradicted = message.snapshot ? undefined : contradiction(this.instances.get(key), event);
      if (contradicted !== undefined) this.contradictions.push(contradicted);
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
  return `${instance.service}/${instance.id} health=${instance.health} rev=${instance.revision}${instance.drain === undefined ? "" : ` drained=${JSON.stringify(instance.drain.reason)}`}`;
}

/**
 * Why `event` cannot follow a view that had `had` for its instance, or
 * undefined when it can: a removal must remove an instance the view has, and
 * a change to one it has must start from the health it has. A change
 * reported twice fails one or the other.
 */
export function contradiction(had: Instance | undefined, event: Event): string | undefined {
  const key = `${event.instance?.service}/${event.instance?.id}`;
  if (event.removed && had === undefined) return `revision ${event.revision} removes ${key}, which the view does not have`;
  if (had !== undefined && event.type !== EventType.REGISTERED && event.previousHealth !== had.health) {
    return `revision ${event.revision} changes ${key} from ${HealthStatus[event.previousHealth]}, but the view has it ${HealthStatus[had.health]}`;
  }
  return undefined;
}
