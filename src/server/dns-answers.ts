import { isIP } from "node:net";
import type { Answer, DecodedPacket, Packet, Question } from "dns-packet";
import type { InstanceRecord } from "../domain/instance.js";
import type { Registry } from "../domain/registry.js";
import { RegistryError } from "../domain/registry-error.js";
import { addressName, readDnsName } from "./dns-names.js";
import { parseHostPort } from "./host-port.js";
import { everyInstance } from "../domain/filter.js";

/** What the registry answers DNS for: its domain (checked by checkDnsDomain), and the TTL of its answers. */
export interface DnsZone {
  readonly domain: string;
  readonly ttlSeconds: number;
}

/** Response codes (RFC 1035 4.1.1), in a header's low four bits. */
const rcode = { noError: 0, formatError: 1, nameError: 3, notImplemented: 4, refused: 5 } as const;
const authoritative = 1 << 10;
const recursionDesired = 1 << 8;

/**
 * Answers one DNS query from the registry, as Discover would: the instances
 * of `web.service.muster` (with the tag `canary` for
 * `canary.web.service.muster`) that take traffic, HEALTHY or DEGRADED, in a
 * new random order each time. A and AAAA give the instances with an IP
 * address; SRV gives every instance's port and host, an IP address standing
 * as `<hex>.addr.muster` with its A or AAAA record beside it. A service the
 * registry does not know is NXDOMAIN; one with no instance taking traffic
 * has no records (NODATA); names outside the domain (`muster` unless the
 * operator chose another) are REFUSED.
 */
export function answerDnsQuery(query: DecodedPacket, registry: Registry, zone: DnsZone): Packet {
  const { ttlSeconds } = zone;
  const questions = query.questions ?? [];
  const reply = (code: number, answers: Answer[] = [], additionals: Answer[] = []): Packet => ({
    id: query.id,
    type: "response",
    flags: authoritative | ((query.flags ?? 0) & recursionDesired) | code,
    questions,
    answers,
    authorities: code === rcode.nameError || (code === rcode.noError && answers.length === 0) ? [startOfAuthority(registry, zone)] : [],
    additionals,
  });
  const question = questions[0];
  if (((query.flags ?? 0) >> 11) & 0xf) return reply(rcode.notImplemented);
  if (question === undefined || questions.length !== 1) return reply(rcode.formatError);
  if (question.class !== "IN" && question.class !== "ANY") return reply(rcode.refused);
  const name = readDnsName(question.name, zone.domain);
  switch (name.kind) {
    case "outside":
      return reply(rcode.refused);
    case "unknown":
      return reply(rcode.nameError);
    case "zone":
      return reply(rcode.noError, question.type === "SOA" ? [startOfAuthority(registry, zone)] : []);
    case "address":
      return reply(rcode.noError, addressRecords(question, name.ip, ttlSeconds));
    case "service": {
      const all = discoverOrNothing(registry, name.service, name.tag);
      if (all.length === 0) return reply(rcode.nameError);
      const serving = shuffled(all.filter((instance) => instance.health !== "unhealthy" && instance.drain === undefined));
      if (question.type === "SRV") {
        const targets = serving.map((instance) => serviceRecord(question.name, instance, zone));
        return reply(rcode.noError, targets.map(({ answer }) => answer), targets.flatMap(({ additional }) => additional));
      }
      return reply(rcode.noError, serving.flatMap((instance) => addressRecords(question, parseHostPort("instance address", instance.address).host, ttlSeconds, question.name)));
    }
  }
}

/** Every instance of the service (with the tag), or none for a name no service or tag can have, such as one with bytes a label may not hold. */
function discoverOrNothing(registry: Registry, service: string, tag: string | undefined): readonly InstanceRecord[] {
  try {
    return registry.discover({ ...everyInstance, service, tags: tag === undefined ? [] : [tag] }).instances;
  } catch (error) {
    if (error instanceof RegistryError && error.code === "invalid-argument") return [];
    throw error;
  }
}

/** The A or AAAA record of `ip` for a question that asks for it (ANY asks for both), named `name`. */
function addressRecords(question: Pick<Question, "name"> & { readonly type: string }, ip: string, ttl: number, name = question.name): Answer[] {
  const type = isIP(ip) === 4 ? "A" : isIP(ip) === 6 ? "AAAA" : undefined;
  // dns-packet names type 255 "ANY", which its types leave out.
  if (type === undefined || (question.type !== type && question.type !== "ANY")) return [];
  return [{ type, name, ttl, class: "IN", data: ip }];
}

function serviceRecord(name: string, instance: InstanceRecord, { domain, ttlSeconds: ttl }: DnsZone): { answer: Answer; additional: Answer[] } {
  const { host, port } = parseHostPort("instance address", instance.address);
  const target = isIP(host) === 0 ? host : addressName(host, domain);
  const additional = isIP(host) === 0 ? [] : addressRecords({ type: "ANY", name: target }, host, ttl);
  return { answer: { type: "SRV", name, ttl, class: "IN", data: { priority: 1, weight: 1, port, target } }, additional };
}

/** Negative answers carry the zone's SOA, whose minimum tells resolvers how long to remember them. */
function startOfAuthority(registry: Registry, { domain, ttlSeconds: ttl }: DnsZone): Answer {
  return {
    type: "SOA",
    name: domain,
    ttl,
    class: "IN",
    data: { mname: `ns.${domain}`, rname: `hostmaster.${domain}`, serial: registry.currentRevision() % 2 ** 32, refresh: 3600, retry: 600, expire: 86400, minimum: ttl },
  };
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
