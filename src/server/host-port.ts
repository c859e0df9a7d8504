import { isIP } from "node:net";

/**
 * Parses a listen address such as 127.0.0.1:6878, [::1]:6878 or :6878
 * (all interfaces). Throws a RangeError whose message names `source`.
 */
export function parseHostPort(source: string, text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  const hostOk = host !== undefined && (host === "" || isIP(host) !== 0 || /^[A-Za-z0-9.-]+$/.test(host));
  if (!hostOk || !Number.isInteger(port) || port > 65535 || (match?.[1] !== undefined && isIP(host) !== 6)) {
    throw new RangeError(`${source} must be host:port, such as 127.0.0.1:6878 or [::1]:6878 (got ${JSON.stringify(text)})`);
  }
  return { host: host === "" ? "0.0.0.0" : host, port };
}
