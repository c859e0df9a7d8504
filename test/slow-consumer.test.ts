import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WatchRequestSchema } from "../gen/muster/v1/registry_pb.js";
import { grpcFrame } from "./support/raw-http2.js";
import { TestRegistry } from "./support/test-registry.js";
import { WatchView } from "./support/watch-view.js";

/** A gRPC Watch over raw HTTP/2 whose caller never reads a byte of the answer. */
function stalledWatch(url: string): { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream; status: Promise<string | undefined> } {
  const session = http2.connect(url);
  const stream = session.request({ ":method": "POST", ":path": "/muster.v1.RegistryService/Watch", "content-type": "application/grpc", te: "trailers" });
  stream.end(grpcFrame(toBinary(WatchRequestSchema, create(WatchRequestSchema, { includeUnhealthy: true }))));
  stream.pause();
  const status = new Promise<string | undefined>((resolve) => {
    stream.on("trailers", (trailers: http2.IncomingHttpHeaders) => resolve(trailers["grpc-status"] as string | undefined));
    stream.on("close", () => resolve(undefined));
  });
  return { session, stream, status };
}

describe("a watcher that stops reading", () => {
  it("is ended with RESOURCE_EXHAUSTED once it falls too far behind, while other watchers get everything", async () => {
    // Far above what a reading watcher lags under this flood, far below the 3,000 events the stalled one misses.
    const maxBacklog = 1_000;
    const server = await TestRegistry.start({ registry: { watchLimits: { snapshotChunk: 500, maxBacklog } } });
    const client = server.client();
    const stalled = stalledWatch(server.url);

    const view = new WatchView();
    const abort = new AbortController();
    void (async () => {
      for await (const message of client.watch({ includeUnhealthy: true }, { signal: abort.signal })) view.apply(message);
    })().catch(() => undefined);
    await expect.poll(() => server.registry.stats().watchers).toBe(2);

    const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label-${i}`, "v".repeat(60)]));
    const total = 3_000;
    for (let start = 0; start < total; start += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => client.register({ instance: { service: "flood", id: `i${start + i}`, address: "10.0.0.1:80", labels } })));
    }

    await expect.poll(() => server.registry.stats().watchers, { timeout: 10_000 }).toBe(1);
    stalled.stream.resume();
    expect(await stalled.status).toBe("8");
    await expect.poll(() => view.instances.size, { timeout: 10_000 }).toBe(total);
    expect(view.revision).toBe(BigInt(total));
    stalled.session.destroy();
    abort.abort();
  });
});
