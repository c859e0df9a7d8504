import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { expect, it } from "vitest";
import { HealthStatus, type WatchResponse } from "../gen/muster/v1/registry_pb.js";
import { defaultExpiryGuardPolicy, type ExpiryGuardPolicy } from "../src/domain/expiry-guard.js";
import { FakeClock } from "./support/fake-clock.js";
import { TestRegistry } from "./support/test-registry.js";
import { summarize, WatchView } from "./support/watch-view.js";
import type { RegistryClient } from "./support/clients.js";

// What agents do to a few instances, in any order, while the clock runs: every transition the
// health rules make must reach a watcher exactly once and agree with what it has already seen.
const id = fc.constantFrom("a", "b", "c");
const command = fc.oneof(
  fc.record({ kind: fc.constant("register" as const), id, version: fc.constantFrom("1.0.0", "1.1.0"), ttlSeconds: fc.constantFrom(2, 5) }),
  fc.record({ kind: fc.constant("heartbeat" as const), id, status: fc.constantFrom(HealthStatus.UNSPECIFIED, HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY) }),
  fc.record({ kind: fc.constant("deregister" as const), id }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 100, max: 9_000 }) }),
);
type Command = typeof command extends fc.Arbitrary<infer T> ? T : never;

async function run(client: RegistryClient, clock: FakeClock, service: string, step: Command): Promise<void> {
  // An instance the steps never registered, or that has expired or left, is NOT_FOUND; nothing else is expected.
  const ignoreNotFound = (error: unknown) => {
    if (ConnectError.from(error).code !== Code.NotFound) throw error;
  };
  switch (step.kind) {
    case "register":
      await client.register({ instance: { service, id: step.id, address: "10.0.0.1:80", version: step.version, ttl: durationFromMs(step.ttlSeconds * 1000), deregisterAfter: durationFromMs(3_000) } });
      return;
    case "heartbeat":
      await client.heartbeat({ service, id: step.id, status: step.status }).catch(ignoreNotFound);
      return;
    case "deregister":
      await client.deregister({ service, id: step.id }).catch(ignoreNotFound);
      return;
    case "wait":
      await clock.advance(step.ms);
  }
}

/** A watcher of `service`: its stream and the view its messages build. */
class Watcher {
  readonly view = new WatchView();
  private readonly stream: AsyncIterator<WatchResponse>;

  constructor(
    private readonly client: RegistryClient,
    private readonly filter: { service: string; includeUnhealthy: boolean },
  ) {
    this.stream = client.watch(filter)[Symbol.asyncIterator]();
  }

  /** Reads one message: the first is the snapshot. */
  async read(): Promise<void> {
    const next = await this.stream.next();
    if (next.done === true) throw new Error("watch stream ended");
    this.view.apply(next.value);
  }

  /** Reads up to `revision`, a change this watcher sees, and checks that its view shows what Discover does. */
  async agreeWithDiscover(revision: bigint): Promise<void> {
    while (this.view.revision < revision) await this.read();
    const found = await this.client.discover(this.filter);
    expect(found.revision).toBe(revision);
    expect(this.view.contradictions).toEqual([]);
    expect(this.view.summary()).toEqual(found.instances.map(summarize).sort());
  }

  async close(): Promise<void> {
    await this.stream.return?.();
  }
}

/**
 * Runs random sequences, each against a registry of its own with `expiryGuard`, and checks both
 * watchers after the steps and again once every instance has been silent long enough to expire.
 */
async function checkTransitions(expiryGuard: ExpiryGuardPolicy, everyoneExpires: boolean): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (steps) => {
      const clock = new FakeClock();
      const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000, expiryGuard } });
      try {
        const client = server.client();
        const service = "jobs";
        const watchers = [new Watcher(client, { service, includeUnhealthy: true }), new Watcher(client, { service, includeUnhealthy: false })];
        for (const watcher of watchers) await watcher.read();
        // A watcher hears only of changes that match its filter, so a change both hear marks where to compare.
        const registerMarker = async () => (await client.register({ instance: { service, id: "marker", address: "10.0.0.2:80", ttl: durationFromMs(5_000), deregisterAfter: durationFromMs(3_000) } })).revision;
        for (const step of steps) await run(client, clock, service, step);
        const afterSteps = await registerMarker();
        for (const watcher of watchers) await watcher.agreeWithDiscover(afterSteps);
        // Long enough for every instance to turn UNHEALTHY and expire (ttl at most 5 s, then 3 s).
        await clock.advance(10_000);
        const afterExpiry = await registerMarker();
        for (const watcher of watchers) await watcher.agreeWithDiscover(afterExpiry);
        const left = (await client.discover({ service, includeUnhealthy: true })).instances.filter((instance) => instance.id !== "marker");
        // Held back from expiring, an instance is still marked UNHEALTHY.
        expect(everyoneExpires ? left : left.filter((instance) => instance.health !== HealthStatus.UNHEALTHY)).toEqual([]);
        for (const watcher of watchers) await watcher.close();
      } finally {
        await server.stop();
      }
    }),
    { numRuns: 30 },
  );
}

it("reports every health transition once, in agreement with what each watcher has seen", async () => {
  // Mass-expiry protection off, so that every silent instance expires.
  await checkTransitions({ threshold: 1, minInstances: Number.MAX_SAFE_INTEGER }, true);
}, 120_000);

it("does so too while mass-expiry protection holds expiries back", async () => {
  await checkTransitions(defaultExpiryGuardPolicy, false);
}, 120_000);
