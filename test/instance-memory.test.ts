import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { expect, it } from "vitest";
import { liveHeapBytes } from "./support/machine.js";
import { TestRegistry } from "./support/test-registry.js";
import type { RegistryClient } from "./support/clients.js";

const services = 50;
const perService = 100;

/** Registers `perService` instances in each of `services` services named `${prefix}-N`, then discovers each service once. */
async function registerAndDiscover(client: RegistryClient, prefix: string): Promise<void> {
  for (let s = 0; s < services; s++) {
    const service = `${prefix}-${s}`;
    await Promise.all(
      Array.from({ length: perService }, (_, i) =>
        client.register({ instance: { service, id: `i${i}`, address: `10.${s}.${i >> 8}.${i & 255}:8080`, version: "1.2.3", labels: { zone: i % 2 === 0 ? "a" : "b", tier: "web" }, tags: ["grpc"], ttl: durationFromMs(3_600_000) } }),
      ),
    );
    const found = await client.discover({ service });
    expect(found.instances).toHaveLength(perService);
  }
}

// The server runs in this process; the client keeps nothing, so the live heap's growth is what the
// registry keeps per instance: the record, its indexes and liveness, its event in the history, and
// the wire form a Discover made of it.
it("an instance costs the registry under 1,500 bytes of live heap, wire form included", async () => {
  const server = await TestRegistry.start();
  try {
    const client = server.client();
    // Once first, so compiled code and what the first calls set up are in the baseline.
    await registerAndDiscover(client, "warm");
    const before = liveHeapBytes();
    await registerAndDiscover(client, "svc");
    const perInstance = (liveHeapBytes() - before) / (services * perService);
    // Measured on Node 20: 1,201-1,217 bytes (1,247-1,266 before liveness kept one key string per
    // instance, 1,305-1,314 before Instances were encoded by hand, and 1,592-1,631 before records
    // shared their strings and timestamps); on Node 22, 1,386-1,393 before the key string.
    expect(perInstance).toBeLessThan(1_500);
  } finally {
    await server.stop();
  }
}, 60_000);
