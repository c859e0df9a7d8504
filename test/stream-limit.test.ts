import { describe, expect, it, vi } from "vitest";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// One connection cannot open watches without bound: past the limit its streams wait for a free one.

describe("streams per connection", () => {
  it("holds one connection's open calls to the limit; the ones past it wait and start as others end", async () => {
    const server = await TestRegistry.start({ maxStreamsPerConnection: 3 });
    const client = server.client();
    await client.register({ instance: { service: "api", id: "a", address: "10.0.0.1:80" } });
    const leaving = Array.from({ length: 5 }, () => new AbortController());
    let snapshots = 0;
    const watches = leaving.map(async (leave) => {
      try {
        for await (const message of client.watch({ service: "api" }, { signal: leave.signal })) if (message.snapshot) snapshots++;
      } catch {
        // cancelled below
      }
    });
    await vi.waitFor(() => expect([server.registry.stats().watchers, snapshots]).toEqual([3, 3]));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([server.registry.stats().watchers, snapshots]).toEqual([3, 3]);
    // A unary call on the same connection waits too, and is answered once a stream is free.
    let answered = false;
    const discover = client.discover({ service: "api" }).then(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(answered).toBe(false);

    leaving[0]?.abort();
    leaving[1]?.abort();
    leaving[2]?.abort();
    await discover;
    await vi.waitFor(() => expect(snapshots).toBe(5));
    for (const leave of leaving) leave.abort();
    await Promise.all(watches);
  });

  it("is a setting of muster serve, refused in one line when it is not a count", async () => {
    const refused = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", await tempDataDir()], { MUSTER_MAX_STREAMS_PER_CONNECTION: "0" });
    expect([refused.code, refused.stderr]).toEqual([1, 'muster: streams per connection (maxStreamsPerConnection, MUSTER_MAX_STREAMS_PER_CONNECTION) must be a whole number from 1 to 1,000,000 (got "0")\n']);
  });
});
