import type { InstanceRecord } from "./instance.js";

/**
 * Postings from each label value and each tag to the instances that carry
 * it, so a filter on `env=prod` or a tag starts from the instances that have
 * it instead of scanning every instance.
 */
export class AttributeIndex {
  private readonly labels = new Map<string, Map<string, Set<InstanceRecord>>>();
  private readonly tags = new Map<string, Set<InstanceRecord>>();

  add(record: InstanceRecord): void {
    for (const [key, value] of Object.entries(record.labels)) {
      let byValue = this.labels.get(key);
      if (byValue === undefined) this.labels.set(key, (byValue = new Map<string, Set<InstanceRecord>>()));
      addTo(byValue, value, record);
    }
    for (const tag of record.tags) addTo(this.tags, tag, record);
  }

  remove(record: InstanceRecord): void {
    for (const [key, value] of Object.entries(record.labels)) {
      const byValue = this.labels.get(key);
      if (byValue === undefined) continue;
      removeFrom(byValue, value, record);
      if (byValue.size === 0) this.labels.delete(key);
    }
    for (const tag of record.tags) removeFrom(this.tags, tag, record);
  }

  /** How many instances have label `key` set to one of `values`. */
  countWithLabel(key: string, values: ReadonlySet<string>): number {
    let count = 0;
    for (const value of values) count += this.labels.get(key)?.get(value)?.size ?? 0;
    return count;
  }

  /** The instances with label `key` set to one of `values`, in no particular order. */
  withLabel(key: string, values: ReadonlySet<string>): InstanceRecord[] {
    const found: InstanceRecord[] = [];
    for (const value of values) found.push(...(this.labels.get(key)?.get(value) ?? []));
    return found;
  }

  /** The instances with the tag, in no particular order. */
  withTag(tag: string): ReadonlySet<InstanceRecord> {
    return this.tags.get(tag) ?? new Set();
  }
}

function addTo(postings: Map<string, Set<InstanceRecord>>, value: string, record: InstanceRecord): void {
  let records = postings.get(value);
  if (records === undefined) postings.set(value, (records = new Set<InstanceRecord>()));
  records.add(record);
}

function removeFrom(postings: Map<string, Set<InstanceRecord>>, value: string, record: InstanceRecord): void {
  const records = postings.get(value);
  if (records?.delete(record) === true && records.size === 0) postings.delete(value);
}
