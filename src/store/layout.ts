/*
 * How the registry lays out its LevelDB. All keys and values are UTF-8:
 *   m:revision              the global revision, decimal
 *   m:history               the history the revisions count in, JSON (see domain/history.ts)
 *   m:place                 which directory the history was set in (inode, birth time), JSON
 *   i:<service>/<id>        an instance record, JSON
 *   e:<revision, 16 digits> an event, JSON; zero-padded so keys sort by revision
 */
/** Keys and prefixes of the layout above. */
export const revisionKey = "m:revision";
export const historyKey = "m:history";
export const placeKey = "m:place";
export const instancePrefix = "i:";
export const eventPrefix = "e:";

/** An instance's key: its service first, so one service's instances are one range. */
export function instanceKeyOf(service: string, id: string): string {
  return `${instancePrefix}${service}/${id}`;
}

/** An event's key, zero-padded so that LevelDB's byte order is revision order. */
export function eventKey(revision: number): string {
  return eventPrefix + String(revision).padStart(16, "0");
}

/** Iterator bounds for every key with `prefix`. */
export function rangeOf(prefix: string): { gte: string; lt: string } {
  return { gte: prefix, lt: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1) };
}
