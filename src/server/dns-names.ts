import { isIP } from "node:net";
import { isDnsLabel } from "../domain/rules.js";

/** The domain the registry answers for unless told another: `web.service.muster`, `canary.web.service.muster`, `0a000001.addr.muster`. */
export const defaultDnsDomain = "muster";

/**
 * A domain to answer for, such as `muster` or `svc.example.internal`, in
 * lower case without a final dot; throws a sentence for one that is not
 * dot-separated DNS labels (letters, digits, '-').
 */
export function checkDnsDomain(domain: string): string {
  const normal = domain.toLowerCase().replace(/\.$/, "");
  if (normal.length > 200 || !normal.split(".").every(isDnsLabel)) {
    throw new TypeError(`must be a DNS domain such as muster or svc.example.internal: dot-separated labels of letters, digits and '-' (got "${domain}")`);
  }
  return normal;
}

/** What a DNS name asks the registry for. */
export type DnsName =
  /** `[<tag>.]<service>.service.muster`: the service's instances that take traffic, with the tag if one is given. */
  | { readonly kind: "service"; readonly service: string; readonly tag: string | undefined }
  /** `<hex>.addr.muster`: an SRV target standing for an instance's IP address. */
  | { readonly kind: "address"; readonly ip: string }
  /** `muster` itself. */
  | { readonly kind: "zone" }
  /** Under `muster`, but no such name. */
  | { readonly kind: "unknown" }
  /** Not the registry's to answer. */
  | { readonly kind: "outside" };

/** Reads a queried name under `domain` (checked by checkDnsDomain), in any case, with or without its final dot. */
export function readDnsName(name: string, domain: string): DnsName {
  const queried = name.toLowerCase().replace(/\.$/, "");
  if (queried === domain) return { kind: "zone" };
  if (!queried.endsWith(`.${domain}`)) return { kind: "outside" };
  const labels = queried.slice(0, -domain.length - 1).split(".");
  const [first = "", second = "", third] = labels.reverse();
  if (first === "service" && second !== "" && labels.length <= 3) return { kind: "service", service: second, tag: third };
  if (first === "addr" && labels.length === 2) {
    const ip = ipOfLabel(second);
    if (ip !== undefined) return { kind: "address", ip };
  }
  return { kind: "unknown" };
}

/** The name that stands for an IP address in SRV answers: 10.0.0.1 is `0a000001.addr.muster`, an IPv6 address its 32 hex digits. */
export function addressName(ip: string, domain: string): string {
  const bytes = isIP(ip) === 4 ? ip.split(".").map(Number) : ipv6Bytes(ip);
  return `${bytes.map((byte) => byte.toString(16).padStart(2, "0")).join("")}.addr.${domain}`;
}

function ipOfLabel(label: string): string | undefined {
  if (!/^([0-9a-f]{8}|[0-9a-f]{32})$/.test(label)) return undefined;
  const bytes = label.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? [];
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":");
}

function ipv6Bytes(ip: string): number[] {
  // The URL parser writes any IPv6 address in hex groups, an embedded IPv4 tail (::ffff:10.0.0.1) included.
  const hex = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const [head = "", tail] = hex.split("::");
  const groupsOf = (part: string | undefined) => (part === undefined || part === "" ? [] : part.split(":"));
  const headGroups = groupsOf(head);
  const tailGroups = groupsOf(tail);
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  return groups.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}
