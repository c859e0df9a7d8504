import type { ServiceImpl } from "@connectrpc/connect";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Registry } from "../domain/registry.js";
import { musterVersion } from "../version.js";
import { directorySize } from "./directory-size.js";
import { FollowingSchema, type RegistryService } from "../../gen/muster/v1/registry_pb.js";
import {
  discoveredToWire,
  filterFromWire,
  healthFromWire,
  healthToWire,
  instanceFromWire,
  instanceToWire,
} from "./convert.js";
import { watchAnswers } from "./watch-answers.js";
import { forwardedWrites } from "./forwarded-writes.js";
import type { LeaderConnection } from "./registry-server-types.js";

/** What Status reports about the serving process, beyond the registry's own counts. */
export interface ServerFacts {
  readonly dataDir: string;
  /** Wall-clock milliseconds when serving started. */
  readonly startedAt: number;
  /** A follower's leader, which takes its writes; absent for a registry of its own. */
  readonly following?: LeaderConnection | undefined;
}

/**
 * The RPCs of muster.v1.RegistryService, mapped onto the domain. No
 * transport details live here, so any Connect router (HTTP/1.1, HTTP/2, or
 * an in-process router transport) can serve it. A follower sends its writes
 * on to its leader (`forwardedWrites`).
 */
export function registryServiceImpl(registry: Registry, facts?: ServerFacts): ServiceImpl<typeof RegistryService> {
  const startedAt = facts?.startedAt ?? Date.now();
  const uptimeOrigin = performance.now() - (Date.now() - startedAt);
  return {
    async register(request) {
      const { instance, revision } = await registry.register(instanceFromWire(request.instance));
      return { instance: instanceToWire(instance), revision: BigInt(revision) };
    },

    async heartbeat(request) {
      const result = await registry.heartbeat(request.service, request.id, healthFromWire("status", request.status));
      return { health: healthToWire(result.health), ttl: durationFromMs(result.ttlMs), revision: BigInt(result.revision), drained: result.drained };
    },

    async drain(request) {
      const { instance, revision } = await registry.drain(request.service, request.id, request.reason);
      return { instance: instanceToWire(instance), revision: BigInt(revision) };
    },

    async undrain(request) {
      const { instance, revision } = await registry.undrain(request.service, request.id);
      return { instance: instanceToWire(instance), revision: BigInt(revision) };
    },

    async deregister(request) {
      const { revision } = await registry.deregister(request.service, request.id);
      return { revision: BigInt(revision) };
    },

    discover(request) {
      return discoveredToWire(registry.discover(filterFromWire(request)));
    },

    watch(request, context) {
      const since = request.sinceRevision > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(request.sinceRevision);
      // The history, read before the stream opens: a follower's snapshot, which changes it, ends every open stream.
      const history = registry.history;
      const stream = registry.watch(filterFromWire(request), since, { history: request.history === "" ? undefined : request.history, heartbeats: request.includeHeartbeats });
      const stop = () => void stream.return();
      context.signal.addEventListener("abort", stop, { once: true });
      return watchAnswers(stream, history, context.signal, () => {
        context.signal.removeEventListener("abort", stop);
        stop();
      });
    },

    async status() {
      const stats = registry.stats();
      return {
        version: musterVersion,
        startedAt: timestampFromMs(startedAt),
        uptime: durationFromMs(Math.round(performance.now() - uptimeOrigin)),
        revision: BigInt(stats.revision),
        history: registry.history,
        historyForks: registry.historyForks.map((fork) => ({ history: fork.id, revision: BigInt(fork.revision) })),
        services: stats.services,
        instances: stats.instances,
        healthy: stats.byHealth.healthy,
        degraded: stats.byHealth.degraded,
        unhealthy: stats.byHealth.unhealthy,
        drained: stats.drained,
        watchers: stats.watchers,
        dataDir: facts?.dataDir ?? "",
        dataDirBytes: BigInt(facts === undefined ? 0 : await directorySize(facts.dataDir)),
        expiryHeld: stats.expiryHold.holding,
        silentInstances: stats.expiryHold.silent,
        expiryHoldReleased: stats.expiryHold.released,
        commits: BigInt(stats.commits),
        committedChanges: BigInt(stats.committedChanges),
        residentBytes: BigInt(process.memoryUsage.rss()),
        writeFailure: stats.writeFailure?.reason ?? "",
        writeFailingSince: stats.writeFailure === undefined ? undefined : timestampFromMs(stats.writeFailure.since),
        following: facts?.following === undefined ? undefined : { $typeName: FollowingSchema.typeName, ...facts.following.state },
      };
    },

    releaseExpiryHold() {
      return { wasHeld: registry.releaseExpiryHold() };
    },

    ...(facts?.following === undefined ? {} : forwardedWrites(facts.following.writes, facts.following.leader, registry)),
  };
}
