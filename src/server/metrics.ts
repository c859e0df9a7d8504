import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Registry as PromRegistry } from "prom-client";
import { eventTypes } from "../domain/event.js";
import type { Health } from "../domain/instance.js";
import type { RegistryStats } from "../domain/registry-types.js";
import { musterVersion } from "../version.js";
import { directorySize } from "./directory-size.js";
import { MethodCalls } from "./method-calls.js";
import type { FollowingState } from "./registry-server-types.js";

/**
 * What the registry tells Prometheus: its own state (instances by health,
 * watchers, changes by kind, commits, write failures, the expiry hold), every
 * RPC under the names go-grpc-prometheus uses (so existing gRPC dashboards
 * and alerts work), and Node's process metrics.
 */
export interface RegistryMetrics {
  /** The counts of a method's calls, to be told as each starts and ends. */
  readonly callsOf: (method: DescMethod) => MethodCalls;
  /** Told of each synced commit, for the store's latency. */
  readonly commitObserved: (durationMs: number) => void;
  /** Told of each DNS reply, by response code and transport. */
  readonly dnsReplied: (rcode: number, transport: "udp" | "tcp") => void;
  /** The text exposition format, read fresh. */
  scrape(): Promise<string>;
  readonly contentType: string;
}

/** A synced LevelDB batch takes a fraction of a millisecond on a good disk, and seconds on a failing one. */
const commitBuckets = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const grpcTypes: Record<DescMethod["methodKind"], string> = { unary: "unary", server_streaming: "server_stream", client_streaming: "client_stream", bidi_streaming: "bidi_stream" };
const healths: readonly Health[] = ["healthy", "degraded", "unhealthy"];

/** DNS response codes by number (RFC 1035 4.1.1), as dig prints them. */
const dnsRcodeNames = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/** The gRPC name of a status, as go-grpc-prometheus labels it ("OK", "InvalidArgument", ...). */
function statusName(status: number): string {
  return status === 0 ? "OK" : (Code[status] ?? String(status));
}

/**
 * Metrics for a registry, with prom-client loaded now rather than at
 * start-up: serving without metrics costs nothing. `methods` are counted
 * at zero from the start, so rates exist before the first call.
 */
export async function registryMetrics(readStats: () => RegistryStats, dataDir: string, methods: readonly DescMethod[], following?: () => FollowingState): Promise<RegistryMetrics> {
  const prom = await import("prom-client");
  const metrics: PromRegistry = new prom.Registry();
  prom.collectDefaultMetrics({ register: metrics });
  // Read once per scrape, by every collector of it.
  let stats: RegistryStats;
  let dataDirBytes = 0;
  const registers = [metrics];
  const gauge = (name: string, help: string, read: () => number) => new prom.Gauge({ name, help, registers, collect: function () { this.set(read()); } });

  new prom.Gauge({ name: "muster_build_info", help: "The muster version serving, as a label; always 1.", labelNames: ["version"], registers }).set({ version: musterVersion }, 1);
  new prom.Gauge({
    name: "muster_instances",
    help: "Registered instances by health.",
    labelNames: ["health"],
    registers,
    collect() {
      for (const health of healths) this.set({ health }, stats.byHealth[health]);
    },
  });
  gauge("muster_drained_instances", "Instances an operator drained out of discovery (see `muster drain`), of any health.", () => stats.drained);
  gauge("muster_services", "Services with at least one instance.", () => stats.services);
  gauge("muster_watchers", "Open Watch streams.", () => stats.watchers);
  gauge("muster_revision", "The revision of the last applied change.", () => stats.revision);
  gauge("muster_writes_failing", "1 while the data directory refuses writes (see `muster status` for the reason), else 0.", () => (stats.writeFailure === undefined ? 0 : 1));
  gauge("muster_expiry_held", "1 while mass-expiry protection holds silent instances, else 0.", () => (stats.expiryHold.holding ? 1 : 0));
  gauge("muster_silent_instances", "Instances whose heartbeats are overdue.", () => stats.expiryHold.silent);
  gauge("muster_data_dir_bytes", "Bytes in the data directory.", () => dataDirBytes);
  if (following !== undefined) {
    gauge("muster_follower_connected", "On a follower: 1 while it holds a stream from its leader, else 0 (see `muster status` for why).", () => (following().connected ? 1 : 0));
    gauge("muster_follower_leader_revision", "On a follower: the leader's revision as it last said; less muster_revision, how far behind the copy is.", () => Number(following().leaderRevision));
  }
  const total = (name: string, help: string, read: () => number) => new prom.Counter({ name, help, registers, collect: function () { this.reset(); this.inc(read()); } });
  total("muster_store_commits_total", "Synced store commits since start.", () => stats.commits);
  total("muster_store_committed_changes_total", "Changes carried by those commits (several registrations share one commit).", () => stats.committedChanges);
  new prom.Counter({
    name: "muster_events_total",
    help: `Changes applied since start, by kind: ${eventTypes.join(", ")}.`,
    labelNames: ["type"],
    registers,
    collect() {
      this.reset();
      for (const type of eventTypes) this.inc({ type }, stats.events[type]);
    },
  });

  const calls = new Map<DescMethod, MethodCalls>();
  const callsOf = (method: DescMethod) => {
    let counts = calls.get(method);
    if (counts === undefined) calls.set(method, (counts = new MethodCalls({ grpc_type: grpcTypes[method.methodKind], grpc_service: method.parent.typeName, grpc_method: method.name })));
    return counts;
  };
  for (const method of methods) callsOf(method);
  const labelNames = ["grpc_type", "grpc_service", "grpc_method"] as const;
  new prom.Counter({
    name: "grpc_server_started_total",
    help: "RPCs started, on every protocol (gRPC, gRPC-Web, Connect).",
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const { labels, started } of calls.values()) this.inc(labels, started);
    },
  });
  new prom.Counter({
    name: "grpc_server_handled_total",
    help: "RPCs finished, by status code.",
    labelNames: [...labelNames, "grpc_code"],
    registers,
    collect() {
      this.reset();
      for (const { labels, ended } of calls.values()) ended.forEach((count, status) => this.inc({ ...labels, grpc_code: statusName(status) }, count));
    },
  });

  // Counted in plain numbers, as calls are, and read at each scrape.
  const dnsReplies = new Map<string, number>();
  new prom.Counter({
    name: "muster_dns_replies_total",
    help: "DNS replies sent (with --dns-addr), by response code (NOERROR, NXDOMAIN, REFUSED, ...) and transport.",
    labelNames: ["rcode", "transport"],
    registers,
    collect() {
      this.reset();
      for (const [key, count] of dnsReplies) {
        const [rcode = "", transport = ""] = key.split("/");
        this.inc({ rcode, transport }, count);
      }
    },
  });

  const commits = new prom.Histogram({ name: "muster_store_commit_seconds", help: "How long a synced commit (one group of changes) took to become durable: the disk's share of every write.", buckets: commitBuckets, registers });

  return {
    contentType: metrics.contentType,
    callsOf,
    commitObserved: (durationMs) => commits.observe(durationMs / 1000),
    dnsReplied: (rcode, transport) => {
      const key = `${dnsRcodeNames[rcode] ?? String(rcode)}/${transport}`;
      dnsReplies.set(key, (dnsReplies.get(key) ?? 0) + 1);
    },
    scrape: async () => {
      stats = readStats();
      dataDirBytes = await directorySize(dataDir);
      return metrics.metrics();
    },
  };
}
