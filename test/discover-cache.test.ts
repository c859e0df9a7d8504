import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HealthStatus, type DiscoverResponse } from "../gen/muster/v1/registry_pb.js";
import { AnswerCache } from "../src/domain/answer-cache.js";
import { everyInstance, type FilterSpec } from "../src/domain/filter.js";
import type { InstanceRecord } from "../src/domain/instance.js";
import { FakeClock } from "./support/fake-clock.js";
import { TestRegistry } from "./support/test-registry.js";

const service = fc.constantFrom("api", "web");
const id = fc.constantFrom("a", "b", "c", "d");
const status = fc.constantFrom(HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY);
const step = fc.oneof(
  fc.record({ kind: fc.constant("register" as const), service, id, zone: fc.constantFrom("a", "b") }),
  fc.record({ kind: fc.constant("heartbeat" as const), service, id, status }),
  fc.record({ kind: fc.constant("deregister" as const), service, id }),
  fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 5 }) }),
  fc.record({
    kind: fc.constant("discover" as const),
    service: fc.constantFrom("", "api", "web"),
    selector: fc.constantFrom("", "zone=a", "zone=b"),
    includeUnhealthy: fc.boolean(),
    transport: fc.constantFrom("gRPC over HTTP/2", "Connect binary over HTTP/2", "Connect JSON over HTTP/1.1"),
  }),
);

interface Modelled {
  zone: string;
  health: HealthStatus;
  lastHeartbeatAt: number;
}

function shown(answer: DiscoverResponse): string[] {
  return answer.instances.map((instance) => `${instance.service}/${instance.id} ${HealthStatus[instance.health]} ${instance.lastHeartbeatAt === undefined ? "-" : timestampMs(instance.lastHeartbeatAt)}`);
}

describe("Discover's reused answers", () => {
  it("always equal what the registry holds: revision, instances, health and last heartbeat, through every kind of change", async () => {
    const clock = new FakeClock();
    // A small cache, so that evictions and answers too large to keep happen too.
    const server = await TestRegistry.start({ registry: { clock, progressIntervalMs: 3_600_000, answerCache: { answers: 3, instances: 5 } } });
    const clients = new Map<string, ReturnType<TestRegistry["client"]>>();
    const clientFor = (transport: string) => {
      const client = clients.get(transport) ?? server.client(transport);
      clients.set(transport, client);
      return client;
    };
    // One registry and one model through every run, so each run starts where the last left off
    // (more state to get wrong; a failing run's shrunk example may need the runs before it).
    const model = new Map<string, Modelled>();
    let revision = 0n;
    const seen = (written: bigint) => (revision = written > revision ? written : revision);

    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const client = clientFor("gRPC over HTTP/2");
        for (const next of steps) {
          const key = "service" in next ? `${next.service}/${"id" in next ? next.id : ""}` : "";
          switch (next.kind) {
            case "register": {
              const { revision: written } = await client.register({ instance: { service: next.service, id: next.id, address: "10.0.0.1:80", labels: { zone: next.zone } } });
              seen(written);
              model.set(key, { zone: next.zone, health: HealthStatus.HEALTHY, lastHeartbeatAt: clock.wallNow() });
              break;
            }
            case "heartbeat": {
              const known = model.get(key);
              const answer = await client.heartbeat({ service: next.service, id: next.id, status: next.status }).catch((error: unknown) => ConnectError.from(error));
              if (known === undefined) {
                expect(answer instanceof ConnectError && answer.code).toBe(Code.NotFound);
                break;
              }
              if (answer instanceof ConnectError) throw answer;
              seen(answer.revision);
              model.set(key, { ...known, health: next.status, lastHeartbeatAt: clock.wallNow() });
              break;
            }
            case "deregister": {
              const answer = await client.deregister({ service: next.service, id: next.id }).catch((error: unknown) => ConnectError.from(error));
              if (answer instanceof ConnectError) expect(answer.code).toBe(Code.NotFound);
              else seen(answer.revision);
              model.delete(key);
              break;
            }
            case "tick":
              await clock.advance(next.ms);
              break;
            case "discover": {
              const answer = await clientFor(next.transport).discover({ service: next.service, selector: next.selector, includeUnhealthy: next.includeUnhealthy });
              const expected = [...model]
                .filter(([name]) => next.service === "" || name.startsWith(`${next.service}/`))
                .filter(([, instance]) => next.selector === "" || next.selector === `zone=${instance.zone}`)
                .filter(([, instance]) => next.includeUnhealthy || instance.health !== HealthStatus.UNHEALTHY)
                .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
                .map(([name, instance]) => `${name} ${HealthStatus[instance.health]} ${instance.lastHeartbeatAt}`);
              expect({ revision: answer.revision, instances: shown(answer) }, JSON.stringify(next)).toEqual({ revision, instances: expected });
              break;
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("keeps the newest answers within its limits of answers and of instances in all", () => {
    const cache = new AnswerCache({ answers: 2, instances: 3 });
    const spec = (service: string): FilterSpec => ({ ...everyInstance, service, includeUnhealthy: false, includeDrained: false });
    let computed = 0;
    const answer = (size: number) => () => {
      computed++;
      return { instances: Array.from({ length: size }, () => ({}) as InstanceRecord), revision: 7 };
    };
    const first = cache.answer(spec("a"), 7, answer(1));
    expect(cache.answer(spec("a"), 7, answer(1))).toBe(first);
    cache.answer(spec("b"), 7, answer(1));
    cache.answer(spec("c"), 7, answer(1));
    expect(computed).toBe(3);
    cache.answer(spec("c"), 7, answer(1));
    cache.answer(spec("b"), 7, answer(1));
    expect(computed).toBe(3);
    expect(cache.answer(spec("a"), 7, answer(1))).not.toBe(first);
    expect(computed).toBe(4);
    cache.answer(spec("big"), 7, answer(4));
    cache.answer(spec("big"), 7, answer(4));
    expect(computed).toBe(6);
    // Three instances in all: two answers of two instances are over that, so the older goes.
    cache.answer(spec("pair"), 7, answer(2));
    cache.answer(spec("other"), 7, answer(2));
    cache.answer(spec("other"), 7, answer(2));
    expect(computed).toBe(8);
    cache.answer(spec("pair"), 7, answer(2));
    expect(computed).toBe(9);
  });
});
