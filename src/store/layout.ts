/*
 * How the registry lays out its LevelDB. All keys and values are UTF-8:
 *   m:revision              the global revision, decimal
 *   m:history               the history the revisions count in, JSON (see domain/history.ts)
 *   m:place                 which directory the history was set in (inode, birth time), JSON
 *   i:<service>/<id>        an instance record, JSON
 *   e:<revision, 16 digits> an event, JSON; zero-padded so keys sort by revision
 */
/** The global revision's key. */
export const revisionKey = "m:revision";
/** The key of the history the revisions count in. */
export const historyKey = "m:history";
/** The key of where the history was set (a copied directory is told apart by it). */
export const placeKey = "m:place";
/** What every instance record's key starts with. */
export const instancePrefix = "i:";
/** What every event's key starts with. */
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
