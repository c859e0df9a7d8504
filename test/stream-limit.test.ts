import { describe, expect, it, vi } from "vitest";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// One connection cannot open watches without bound: past the limit its streams wait for a free one.

describe("streams per connection", () => {
  it("holds one connection's open calls to the limit; a call past it waits, and the connection serves again once streams end", async () => {
    const server = await TestRegistry.start({ maxStreamsPerConnection: 3 });
    const client = server.client();
    await client.register({ instance: { service: "api", id: "a", address: "10.0.0.1:80" } });
    const leaving = Array.from({ length: 4 }, () => new AbortController());
    let snapshots = 0;
    const watch = async (signal: AbortSignal) => {
      try {
        for await (const message of client.watch({ service: "api" }, { signal })) if (message.snapshot) snapshots++;
      } catch {
        // cancelled below
      }
    };
    const watches = leaving.map((leave) => watch(leave.signal));
    await vi.waitFor(() => expect([server.registry.stats().watchers, snapshots]).toEqual([3, 3]));
    // The fourth watch and a unary call on the same connection wait for a free stream.
    let answered = false;
    const discover = client.discover({ service: "api" }, { signal: leaving[3]?.signal }).then(() => (answered = true), () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([server.registry.stats().watchers, snapshots, answered]).toEqual([3, 3, false]);

    for (const leave of leaving) leave.abort();
    await Promise.all([...watches, discover]);
    await vi.waitFor(() => expect(server.registry.stats().watchers).toBe(0));
    expect((await client.discover({ service: "api" })).instances).toHaveLength(1);
    const again = new AbortController();
    const following = watch(again.signal);
    await vi.waitFor(() => expect(snapshots).toBe(4));
    again.abort();
    await following;
  });

  it("is a setting of muster serve, refused in one line when it is not a count", async () => {
    const refused = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", await tempDataDir()], { MUSTER_MAX_STREAMS_PER_CONNECTION: "0" });
    expect([refused.code, refused.stderr]).toEqual([1, 'muster: streams per connection (maxStreamsPerConnection, MUSTER_MAX_STREAMS_PER_CONNECTION) must be a whole number from 1 to 1,000,000 (got "0")\n']);
  });
});
