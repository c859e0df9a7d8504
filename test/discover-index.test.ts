import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileFilter, everyInstance } from "../src/domain/filter.js";
import { defaultLivenessPolicy } from "../src/domain/instance-spec.js";
import { recordFromWire } from "../src/server/convert.js";
import type { Instance } from "../gen/muster/v1/registry_pb.js";
import { TestRegistry } from "./support/test-registry.js";

const service = fc.constantFrom("api", "web", "db");
const id = fc.constantFrom("a", "b", "c", "d", "e", "f");
const labels = fc.dictionary(fc.constantFrom("env", "tier", "zone"), fc.constantFrom("prod", "dev", "x"), { maxKeys: 3 });
const tags = fc.uniqueArray(fc.constantFrom("grpc", "http", "gpu"), { maxLength: 3 });
const change = fc.oneof(
  fc.record({ kind: fc.constant("register" as const), service, id, labels, tags }),
  fc.record({ kind: fc.constant("deregister" as const), service, id }),
);
const filter = fc.record({
  service: fc.constantFrom("", "api", "web", "db"),
  selector: fc.constantFrom("", "env=prod", "env=dev,tier=x", "tier in (prod,x)", "zone!=x", "env notin (prod)", "!zone", "env", "env=prod,zone in (dev,x)"),
  tags: fc.subarray(["grpc", "http", "gpu"], { maxLength: 2 }),
});

/** The matches a full scan finds, in Discover's order: what the index must reproduce. */
function scanned(all: readonly Instance[], spec: { service: string; selector: string; tags: string[] }): string[] {
  const compiled = compileFilter({ ...everyInstance, ...spec });
  return all.filter((instance) => compiled.matches(recordFromWire(instance, defaultLivenessPolicy))).map((instance) => `${instance.service}/${instance.id}`);
}

describe("Discover's indexes by service, label and tag", () => {
  it("find exactly what a full scan finds, in the same order, through registrations, relabelling and removals", async () => {
    const server = await TestRegistry.start();
    const client = server.client();
    await fc.assert(
      fc.asyncProperty(fc.array(change, { maxLength: 25 }), fc.array(filter, { minLength: 1, maxLength: 6 }), async (changes, filters) => {
        for (const step of changes) {
          if (step.kind === "register") await client.register({ instance: { service: step.service, id: step.id, address: "10.0.0.1:80", labels: step.labels, tags: step.tags } });
          else await client.deregister({ service: step.service, id: step.id }).catch(() => undefined);
        }
        const all = (await client.discover({ includeUnhealthy: true })).instances;
        const keys = all.map((instance) => `${instance.service}/${instance.id}`);
        expect(keys).toEqual([...keys].sort());
        for (const spec of filters) {
          const found = await client.discover({ ...spec, includeUnhealthy: true });
          expect(found.instances.map((instance) => `${instance.service}/${instance.id}`), JSON.stringify(spec)).toEqual(scanned(all, spec));
        }
      }),
      { numRuns: 40 },
    );
  });
});
