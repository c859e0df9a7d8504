import type { InstanceRecord } from "./instance.js";

/** The registered instances, grouped by service for cheap per-service reads. */
export class InstanceIndex {
  private readonly services = new Map<string, Map<string, InstanceRecord>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get serviceCount(): number {
    return this.services.size;
  }

  serviceNames(): string[] {
    return [...this.services.keys()];
  }

  get(service: string, id: string): InstanceRecord | undefined {
    return this.services.get(service)?.get(id);
  }

  set(instance: InstanceRecord): void {
    let byId = this.services.get(instance.service);
    if (byId === undefined) {
      byId = new Map();
      this.services.set(instance.service, byId);
    }
    if (!byId.has(instance.id)) this.count++;
    byId.set(instance.id, instance);
  }

  delete(service: string, id: string): void {
    const byId = this.services.get(service);
    if (byId?.delete(id) !== true) return;
    this.count--;
    if (byId.size === 0) this.services.delete(service);
  }

  /** The instances of one service, or of all when `service` is undefined. */
  *scan(service: string | undefined): IterableIterator<InstanceRecord> {
    if (service !== undefined) {
      yield* this.services.get(service)?.values() ?? [];
      return;
    }
    for (const byId of this.services.values()) yield* byId.values();
  }
}
