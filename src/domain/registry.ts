import { systemClock, type Clock } from "./clock.js";
import { eventTypes, isRemoval, type EventType, type RegistryEvent } from "./event.js";
import { EventLog } from "./event-log.js";
import { compileFilter, type Filter, type FilterSpec } from "./filter.js";
import { branchedHistory, continuesHistory, leadersHistory, type Fork, type History } from "./history.js";
import { instanceKey, makeRecord, parseInstanceKey, sameSpec, updateRecord, type Drain, type Health, type InstanceRecord } from "./instance.js";
import { compareText, InstanceIndex } from "./instance-index.js";
import { defaultLivenessPolicy, validateInstanceSpec, type InstanceInput, type LivenessPolicy } from "./instance-spec.js";
import { RegistryError } from "./registry-error.js";
import type { RegistryStore } from "./registry-store.js";
import { checkDrainReason, checkInstanceId, checkServiceName } from "./rules.js";
import type { Transaction } from "./transaction.js";
import { WatchHub } from "./watch-hub.js";
import type { InstanceHeartbeat, WatchStream } from "./watch-stream.js";
import { GroupCommitter } from "./group-committer.js";
import { defaultExpiryGuardPolicy } from "./expiry-guard.js";
import { LivenessKeeper } from "./liveness-keeper.js";
import { AnswerCache } from "./answer-cache.js";
import { makeCopiedChanges, type CopiedChange } from "./copied-changes.js";
import { RevisionWaits } from "./revision-waits.js";
import type { Availability, Discovered, HeartbeatResult, Registered, RegistryOptions, RegistryStats } from "./registry-types.js";

export type { Availability, Discovered, HeartbeatResult, HistoryBranch, Registered, RegistryOptions, RegistryStats } from "./registry-types.js";

/**
 * The registry: instances, their health, and the ordered history of changes.
 * It knows nothing of transports; the server maps RPCs onto these methods.
 *
 * Every write is durable before it is acknowledged or published: writes are
 * grouped into one synced store commit (group commit), then applied to
 * memory, then fanned out to watchers.
 */
export class Registry {
  private readonly index = new InstanceIndex();
  private readonly log: EventLog;
  private readonly hub: WatchHub;
  private readonly liveness: LivenessKeeper;
  private readonly committer: GroupCommitter;
  private readonly clock: Clock;
  private readonly policy: LivenessPolicy;
  private revision: number;
  private currentHistory: History;
  /** Changes applied since this process opened the registry, by kind. */
  private readonly eventCounts = Object.fromEntries(eventTypes.map((type) => [type, 0])) as Record<EventType, number>;
  private closing = false;
  private readonly closeListeners = new Set<() => void>();
  private readonly answers: AnswerCache;
  /** A follower's answer to every write, naming its leader; undefined for a registry of its own. */
  private readonly writeRefusal: RegistryError | undefined;
  private readonly waits = new RevisionWaits();

  private constructor(store: RegistryStore, revision: number, history: History, options: RegistryOptions) {
    this.clock = options.clock ?? systemClock;
    this.policy = options.liveness ?? defaultLivenessPolicy;
    this.revision = revision;
    this.currentHistory = history;
    this.writeRefusal = options.followerOf === undefined ? undefined : new RegistryError("failed-precondition", `this registry is a read-only follower of ${options.followerOf}: send writes to the leader`);
    this.log = new EventLog(options.historyLimit ?? 10_000);
    this.answers = new AnswerCache(options.answerCache);
    this.hub = new WatchHub(
      this.clock,
      options.progressIntervalMs ?? 10_000,
      options.watchLimits ?? { snapshotChunk: 500, maxBacklog: 10_000 },
      () => this.revision,
      (key) => {
        const { service, id } = parseInstanceKey(key);
        return this.index.get(service, id);
      },
    );
    this.liveness = new LivenessKeeper(this.clock, options.expiryGuard ?? defaultExpiryGuardPolicy, {
      runInBackground: (compute) => this.committer.runInBackground(compute),
      instanceCount: () => this.index.size,
      beaten: (service) => this.answers.beaten(service),
      onExpiryHoldChange: options.onExpiryHoldChange ?? (() => undefined),
    });
    this.committer = new GroupCommitter(store, options.historyLimit ?? 10_000, {
      index: this.index,
      currentRevision: () => this.revision,
      now: () => this.clock.wallNow(),
      applied: (tx) => this.applied(tx),
      // A failed group leaves its instances as they were: check them again soon.
      failed: (tx) => this.liveness.retryLater(tx.touchedKeys(), this.policy.minDurationMs),
      onBackgroundError: options.onBackgroundError,
      onWriteFailureChange: options.onWriteFailureChange,
      onCommitted: options.onCommitted,
    });
  }

  /**
   * Loads the persisted state and starts tracking liveness. Every loaded
   * instance gets a fresh ttl, so restarting the registry expires nobody.
   */
  static async open(store: RegistryStore, options: RegistryOptions = {}): Promise<Registry> {
    const state = await store.load();
    let history = state.history;
    if ((history.copied || state.moved) && options.followerOf === undefined) {
      // A follower opened to take writes of its own, or a copy of a data directory: its next revisions are not the original's.
      history = branchedHistory(history, state.revision);
      await store.commit({ revision: state.revision, puts: [], deletes: [], events: [], dropEventsThrough: 0, history });
      options.onHistoryBranched?.({ why: state.history.copied ? "promoted" : "copied", revision: state.revision, from: state.history.id, to: history.id });
    }
    const registry = new Registry(store, state.revision, history, options);
    registry.log.append(state.events);
    const loadedAt = registry.liveness.now();
    for (const instance of state.instances) {
      registry.index.set(instance);
      if (registry.writeRefusal === undefined) registry.liveness.track(instance, loadedAt);
    }
    return registry;
  }

  /** Registers an instance, or updates it in place when (service, id) exists. */
  register(input: InstanceInput | undefined): Promise<Registered> {
    if (this.writeRefusal !== undefined) return Promise.reject(this.writeRefusal);
    const spec = validateInstanceSpec(input, this.policy);
    return this.committer.run((tx) => {
      const existing = tx.get(spec.service, spec.id);
      // One key string for liveness's map and its deadline heap, which keep it as long as the instance lives.
      const key = instanceKey(spec.service, spec.id);
      const beat = this.liveness.beat(spec.service, key);
      if (existing !== undefined && sameSpec(existing, spec) && existing.health === "healthy") {
        this.hub.heartbeat(key, beat.wall);
        return { instance: updateRecord(existing, { lastHeartbeatAt: beat.wall }), revision: existing.revision };
      }
      // Registering again keeps a drain: an agent restarted while drained must not slip back into discovery.
      const record = makeRecord(spec, { health: "healthy", registeredAt: existing?.registeredAt ?? beat.wall, lastHeartbeatAt: beat.wall, revision: 0, drain: existing?.drain });
      const type = existing === undefined ? "registered" : sameSpec(existing, spec) ? "health-changed" : "updated";
      const stored = tx.put(type, record, existing);
      this.liveness.schedule(key, beat.monotonic + spec.ttlMs);
      return { instance: stored, revision: stored.revision };
    });
  }

  /**
   * Proves an instance alive for another ttl, with the health it reports
   * (default HEALTHY). A heartbeat that changes nothing is not written.
   */
  heartbeat(service: string, id: string, reported: Health | undefined): Promise<HeartbeatResult> {
    if (this.writeRefusal !== undefined) return Promise.reject(this.writeRefusal);
    checkServiceName("service", service);
    checkInstanceId("id", id);
    const health = reported ?? "healthy";
    const key = instanceKey(service, id);
    const current = this.index.get(service, id);
    if (current !== undefined && current.health === health && !this.committer.isInFlight(key)) {
      this.hub.heartbeat(key, this.liveness.beat(service, key).wall);
      return Promise.resolve({ health, ttlMs: current.ttlMs, revision: current.revision, drained: current.drain !== undefined });
    }
    return this.committer.run((tx) => {
      const instance = tx.get(service, id);
      if (instance === undefined) throw RegistryError.notFound(service, id, "register it again");
      const beat = this.liveness.beat(service, key);
      const drained = instance.drain !== undefined;
      if (instance.health === health) {
        this.hub.heartbeat(key, beat.wall);
        return { health, ttlMs: instance.ttlMs, revision: instance.revision, drained };
      }
      const stored = tx.put("health-changed", updateRecord(instance, { health, lastHeartbeatAt: beat.wall }), instance);
      this.liveness.schedule(key, beat.monotonic + instance.ttlMs);
      return { health, ttlMs: instance.ttlMs, revision: stored.revision, drained };
    });
  }

  /**
   * Takes an instance out of discovery, for `reason`, without touching its
   * liveness. Draining again with the same reason changes nothing; with
   * another, the reason changes and the time of the first drain stays.
   */
  drain(service: string, id: string, reason: string): Promise<Registered> {
    checkDrainReason("reason", reason);
    return this.changeDrain(service, id, "there is nothing to drain", (current) => (current?.reason === reason ? current : { reason, since: current?.since ?? this.clock.wallNow() }));
  }

  /** Puts a drained instance back into discovery; one that is not drained is left as it is. */
  undrain(service: string, id: string): Promise<Registered> {
    return this.changeDrain(service, id, "there is nothing to undrain", () => undefined);
  }

  /** Removes an instance: a graceful leave. */
  deregister(service: string, id: string): Promise<{ revision: number }> {
    if (this.writeRefusal !== undefined) return Promise.reject(this.writeRefusal);
    checkServiceName("service", service);
    checkInstanceId("id", id);
    return this.committer.run((tx) => {
      const instance = tx.get(service, id);
      if (instance === undefined) throw RegistryError.notFound(service, id, "there is nothing to deregister");
      return { revision: tx.remove("deregistered", instance) };
    });
  }

  /**
   * The matching instances, sorted by service and id, at one revision. While
   * nothing it shows has changed, the same filter gets the same (readonly)
   * answer object back.
   */
  discover(spec: FilterSpec): Discovered {
    return this.answers.answer(spec, this.revision, () => ({ instances: this.matching(compileFilter(spec)), revision: this.revision }));
  }

  /**
   * Streams the changes matching a filter. `sinceRevision` 0 (or one the log
   * no longer holds, one from the future, or one of another `history`)
   * starts with a snapshot; otherwise exactly the matching events after it,
   * then live events. With `heartbeats`, the stream also tells, once a
   * second, when the instances it shows last sent a heartbeat (a resumed
   * stream first hears the last heartbeat of each).
   */
  watch(spec: FilterSpec, sinceRevision: number, { history = this.currentHistory.id, heartbeats = false }: { history?: string; heartbeats?: boolean } = {}): WatchStream {
    const filter = compileFilter(spec);
    const stream = this.hub.open(filter, heartbeats);
    const resumable = sinceRevision !== 0 && sinceRevision <= this.revision && continuesHistory(this.currentHistory, history, sinceRevision);
    const missed = resumable ? this.log.since(sinceRevision, this.revision) : undefined;
    if (missed === undefined) {
      stream.pushSnapshot(this.matching(filter), this.revision, this.clock.wallNow());
    } else {
      stream.offer(missed, this.revision, true);
      // The log holds no heartbeats: a resumed stream that wants them hears the last of each instance it shows.
      if (heartbeats) stream.heartbeats(this.matching(filter).map((instance) => ({ instance, at: instance.lastHeartbeatAt })), this.revision);
    }
    return stream;
  }

  /**
   * A follower's copy of its leader's changes, made durable at the leader's
   * revisions (see makeCopiedChanges); resolves with the revision reached.
   */
  copy(changes: readonly CopiedChange[]): Promise<number> {
    return this.committer.run((tx) => makeCopiedChanges(tx, changes));
  }

  /**
   * A follower's copy of its leader's snapshot: every instance replaced at
   * `revision` of the leader's `history`, and the event log started over.
   * Watchers here are ended with UNAVAILABLE and, resuming, get a snapshot
   * too.
   */
  replaceAll(instances: readonly InstanceRecord[], revision: number, history: string): Promise<void> {
    return this.committer.run((tx) => tx.replaceAll(instances, revision, history));
  }

  /**
   * A follower's step onto its leader's history `id`, when the leader,
   * resumed from this registry's revision, names another (it was promoted
   * since, or followed one that was): the two agree up to here, so a watcher
   * of the old history resumes here without a snapshot. Watchers here are
   * ended with UNAVAILABLE and, resuming, learn the new history.
   */
  takeLeadersHistory(id: string): Promise<void> {
    return this.committer.run((tx) => tx.takeHistory(leadersHistory(this.currentHistory, id, tx.lastRevision)));
  }

  /**
   * A follower's copy of the heartbeats its leader took (a Watch with
   * heartbeats), so that last_heartbeat_at here is the leader's. Instances
   * this follower does not hold are skipped.
   */
  copyHeartbeats(heartbeats: readonly InstanceHeartbeat[]): void {
    if (this.writeRefusal === undefined) throw new RegistryError("failed-precondition", "only a follower copies heartbeats: a registry of its own takes them from its instances");
    for (const { service, id, at } of heartbeats) {
      if (this.index.get(service, id) === undefined) continue;
      const key = instanceKey(service, id);
      this.liveness.copyBeat(service, key, at);
      this.hub.heartbeat(key, at);
    }
  }

  /**
   * Resolves once this registry has applied `revision` (for a follower, its
   * copy of a write it sent to its leader), or when `signal` aborts or the
   * registry closes. Never rejects.
   */
  reached(revision: number, signal: AbortSignal): Promise<void> {
    return this.waits.until(revision, this.revision, signal);
  }

  /** The named service's availability, from its instances' health. */
  availability(service: string): Availability {
    let instances = 0;
    for (const instance of this.index.scan(service)) {
      if (instance.health === "healthy" && instance.drain === undefined) return "serving";
      instances++;
    }
    return instances === 0 ? "unknown" : "not-serving";
  }

  /** The services that have instances, sorted. */
  serviceNames(): string[] {
    return this.index.serviceNames().sort(compareText);
  }

  /**
   * An operator's override of mass-expiry protection: silent instances
   * expire at their next check. Returns whether a hold was in force.
   */
  releaseExpiryHold(): boolean {
    return this.liveness.releaseExpiryHold();
  }

  /** True until close() begins: the registry takes writes. */
  get acceptingWrites(): boolean {
    return !this.closing;
  }

  /** Calls `listener` once when close() begins; returns a function that unsubscribes. */
  onClose(listener: () => void): () => void {
    if (this.closing) {
      listener();
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * The change at the current revision, while the event log holds it: what a
   * follower compares with its leader's change at that revision, to learn
   * whether the two histories are still one. Undefined at revision 0 and
   * after a follower's snapshot, whose history is not known.
   */
  lastEvent(): RegistryEvent | undefined {
    return this.revision === 0 ? undefined : this.log.since(this.revision - 1, this.revision)?.[0];
  }

  /** The revision of the last applied change; cheaper than `stats()`, which counts instances. */
  currentRevision(): number {
    return this.revision;
  }

  /** The id of the history the revisions count in (see history.ts): a follower's is its leader's. */
  get history(): string {
    return this.currentHistory.id;
  }

  /** The histories the current one branched from, newest first, with the last revision each shares with it. */
  get historyForks(): readonly Fork[] {
    return this.currentHistory.ancestors;
  }

  /** Counts every instance by health: O(instances), meant for status calls, not hot paths. */
  stats(): RegistryStats {
    const byHealth: Record<Health, number> = { healthy: 0, degraded: 0, unhealthy: 0 };
    let drained = 0;
    const { commits, writes } = this.committer.counts();
    for (const instance of this.index.scan(undefined)) {
      byHealth[instance.health]++;
      if (instance.drain !== undefined) drained++;
    }
    return {
      revision: this.revision,
      services: this.index.serviceCount,
      instances: this.index.size,
      byHealth,
      drained,
      watchers: this.hub.size,
      expiryHold: this.liveness.expiryHold(),
      commits,
      committedChanges: writes,
      writeFailure: this.committer.writeFailure(),
      events: { ...this.eventCounts },
    };
  }

  /**
   * Finishes the writes under way, then ends every watch stream with
   * UNAVAILABLE (watchers resume elsewhere or after restart) and stops timers.
   * The store is the caller's to close.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const listener of this.closeListeners) listener();
    this.closeListeners.clear();
    this.liveness.stop();
    await this.committer.close();
    this.waits.endAll();
    this.hub.closeAll(new RegistryError("unavailable", "the registry is shutting down; reconnect and resume from your last revision"));
  }

  /** Writes the drain `next` makes of the instance's, unless it is the same one. */
  private changeDrain(service: string, id: string, remedy: string, next: (current: Drain | undefined) => Drain | undefined): Promise<Registered> {
    if (this.writeRefusal !== undefined) return Promise.reject(this.writeRefusal);
    checkServiceName("service", service);
    checkInstanceId("id", id);
    return this.committer.run((tx) => {
      const instance = tx.get(service, id);
      if (instance === undefined) throw RegistryError.notFound(service, id, remedy);
      const drain = next(instance.drain);
      if (drain === instance.drain) return { instance: this.liveness.withLastBeat(instance), revision: instance.revision };
      const stored = tx.put("drain-changed", updateRecord(this.liveness.withLastBeat(instance), { drain }), instance);
      return { instance: stored, revision: stored.revision };
    });
  }

  private matching(filter: Filter): InstanceRecord[] {
    const found: InstanceRecord[] = [];
    for (const instance of this.index.candidates(filter)) {
      if (filter.matches(instance)) found.push(this.liveness.withLastBeat(instance));
    }
    return found;
  }

  private applied(tx: Transaction): void {
    tx.applyTo(this.index);
    this.revision = tx.lastRevision;
    if (tx.history !== undefined) {
      this.currentHistory = tx.history;
      // Every answer of an open stream names the history it opened in.
      const why = tx.isReplacement ? "this follower took a fresh snapshot from its leader" : "this follower's leader counts in a new history (it was promoted), and so does this follower now";
      this.hub.closeAll(new RegistryError("unavailable", `${why}; resume from your last revision`));
    }
    if (tx.isReplacement) {
      this.log.clear();
      this.answers.clear();
      // The instances the snapshot left out went without removal events.
      for (const key of tx.touchedKeys()) {
        const { service, id } = parseInstanceKey(key);
        if (this.index.get(service, id) === undefined) this.liveness.forget(key);
      }
    }
    for (const event of tx.events) {
      this.eventCounts[event.type]++;
      if (isRemoval(event)) {
        this.liveness.forget(instanceKey(event.instance.service, event.instance.id));
        if (!this.index.hasService(event.instance.service)) this.answers.forgetService(event.instance.service);
      }
    }
    this.log.append(tx.events);
    this.hub.publish(tx.events, this.revision);
    this.waits.passed(this.revision);
  }
}
