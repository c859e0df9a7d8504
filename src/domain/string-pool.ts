/** Strings longer than this are left alone: names, versions and label values are short; addresses and ids are unique anyway. */
const maxPooledLength = 64;
/** Distinct strings kept; past it the pool starts over, so values that stopped recurring do not hold it forever. */
const poolSize = 4_096;

const pool = new Map<string, string>();

/**
 * The one copy of `value` the registry keeps. Every decoded request brings
 * its own copy of the service name, version, tags and label values, and
 * 10,000 instances of a hundred services kept 10,000 of each: about 100
 * bytes an instance. Records share the pooled copy instead. Starting over
 * when full keeps the pool bounded; strings already shared stay shared.
 */
export function pooled(value: string): string {
  if (value.length > maxPooledLength) return value;
  const kept = pool.get(value);
  if (kept !== undefined) return kept;
  if (pool.size >= poolSize) pool.clear();
  pool.set(value, value);
  return value;
}

/** Each value pooled, in order. */
export function pooledList(values: readonly string[]): string[] {
  return values.map(pooled);
}

/** Keys and values pooled. */
export function pooledLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const shared: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) shared[pooled(key)] = pooled(value);
  return shared;
}
