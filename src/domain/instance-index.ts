import { AttributeIndex } from "./attribute-index.js";
import type { InstanceRecord } from "./instance.js";

/** What a filter tells the index about where its matches can be. */
export interface IndexHint {
  /** The one service to look in, or undefined for all. */
  readonly service: string | undefined;
  /** Label requirements of the form `key in (values)` (`key=value` is one value). */
  readonly labels: readonly (readonly [key: string, values: ReadonlySet<string>])[];
  /** Tags every match carries. */
  readonly tags: readonly string[];
}

/**
 * The registered instances, grouped by service, with each service's
 * instances kept sorted by id until it changes, and postings by label and
 * tag. Reads pick the smallest starting set instead of scanning.
 */
export class InstanceIndex {
  private readonly services = new Map<string, Map<string, InstanceRecord>>();
  /** Each service's instances sorted by id; dropped when the service changes. */
  private readonly sorted = new Map<string, InstanceRecord[]>();
  private readonly attributes = new AttributeIndex();
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

  hasService(service: string): boolean {
    return this.services.has(service);
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
    const previous = byId.get(instance.id);
    if (previous === undefined) this.count++;
    else this.attributes.remove(previous);
    byId.set(instance.id, instance);
    this.attributes.add(instance);
    this.sorted.delete(instance.service);
  }

  delete(service: string, id: string): void {
    const byId = this.services.get(service);
    const previous = byId?.get(id);
    if (byId === undefined || previous === undefined) return;
    byId.delete(id);
    this.attributes.remove(previous);
    this.sorted.delete(service);
    this.count--;
    if (byId.size === 0) this.services.delete(service);
  }

  /** The instances of one service, or of all when `service` is undefined, in no particular order. */
  *scan(service: string | undefined): IterableIterator<InstanceRecord> {
    if (service !== undefined) {
      yield* this.services.get(service)?.values() ?? [];
      return;
    }
    for (const byId of this.services.values()) yield* byId.values();
  }

  /**
   * Every instance that can match the hint, sorted by service and then id:
   * the smallest of the service's instances, one label requirement's
   * postings and one tag's. The caller still applies the whole filter.
   */
  candidates(hint: IndexHint): readonly InstanceRecord[] {
    let best: Iterable<InstanceRecord> | undefined;
    let bestSize = hint.service === undefined ? this.count : (this.services.get(hint.service)?.size ?? 0);
    for (const [key, values] of hint.labels) {
      const size = this.attributes.countWithLabel(key, values);
      if (size < bestSize) [best, bestSize] = [this.attributes.withLabel(key, values), size];
    }
    for (const tag of hint.tags) {
      const postings = this.attributes.withTag(tag);
      if (postings.size < bestSize) [best, bestSize] = [postings, postings.size];
    }
    if (best !== undefined) return [...best].sort(byServiceThenId);
    if (hint.service !== undefined) return this.sortedService(hint.service);
    return [...this.services.keys()].sort(compareText).flatMap((service) => this.sortedService(service));
  }

  private sortedService(service: string): readonly InstanceRecord[] {
    const byId = this.services.get(service);
    // Nothing is kept for a service that does not exist: callers choose the names.
    if (byId === undefined) return [];
    let sorted = this.sorted.get(service);
    if (sorted === undefined) {
      sorted = [...byId.values()].sort(byServiceThenId);
      this.sorted.set(service, sorted);
    }
    return sorted;
  }
}

/** Orders instances by service, then id, by code unit as Discover promises. */
export function byServiceThenId(a: InstanceRecord, b: InstanceRecord): number {
  return compareText(a.service, b.service) || compareText(a.id, b.id);
}

/** Compares by UTF-16 code unit, the same on every platform and locale. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
