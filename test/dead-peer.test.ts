import http2 from "node:http2";
import { connect } from "node:net";
import { expect, it } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher } from "../src/client/watcher.js";
import { startBlackholeProxy } from "./support/blackhole-proxy.js";
import { followWatcher } from "./support/follow-watcher.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

// The server's side of a partition: a client that vanished without closing its connection kept
// it, with its watch streams, until TCP gave up on a write (about 15 minutes), or forever when
// nothing was written to it.

it("closes the connection of a client that stopped answering PINGs, and its watch stream with it", async () => {
  const server = await TestRegistry.start({ peerCheck: { intervalMs: 300, timeoutMs: 300, firstBytesMs: 30_000 } });
  const proxy = await startBlackholeProxy(server.url);
  const watcher = new RegistryWatcher(createRegistryClient({ baseUrl: proxy.url }), { service: "jobs" });
  const followed = followWatcher(watcher);
  const direct = server.client();
  await expect.poll(() => followed.snapshots).toBe(1);
  expect((await direct.status({})).watchers).toBe(1);
  // A live client answers every PING: its stream stays.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect((await direct.status({})).watchers).toBe(1);

  proxy.blackhole();
  await expect.poll(async () => (await direct.status({})).watchers, { timeout: 5_000 }).toBe(0);
  await followed.stop();
});

it("closes a connection that never says which protocol it speaks", async () => {
  const server = await TestRegistry.start({ peerCheck: { intervalMs: 60_000, timeoutMs: 20_000, firstBytesMs: 500 } });
  const { port } = new URL(server.url);
  const closedAfter = (firstBytes: string) =>
    new Promise<number>((resolve) => {
      const startedAt = Date.now();
      const socket = connect(Number(port), "127.0.0.1", () => socket.write(firstBytes));
      socket.on("error", () => undefined).on("close", () => resolve(Date.now() - startedAt));
    });
  // Nothing at all, and half of the HTTP/2 preface: both are cut after half a second.
  const [silent, halfPreface] = await Promise.all([closedAfter(""), closedAfter("PRI * HTTP/2")]);
  expect(silent).toBeGreaterThanOrEqual(450);
  expect(halfPreface).toBeGreaterThanOrEqual(450);
  expect(Math.max(silent, halfPreface)).toBeLessThan(5_000);
  // A connection that has said what it speaks is not cut by that limit.
  const session = http2.connect(server.url);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(session.destroyed || session.closed).toBe(false);
  session.close();
}, 15_000);

it("sends no PINGs with an interval of Infinity", async () => {
  const server = await TestRegistry.start({ peerCheck: { intervalMs: Number.POSITIVE_INFINITY, timeoutMs: 300, firstBytesMs: 30_000 } });
  const proxy = await startBlackholeProxy(server.url);
  const followed = followWatcher(new RegistryWatcher(createRegistryClient({ baseUrl: proxy.url }), { service: "jobs" }));
  await expect.poll(() => followed.snapshots).toBe(1);
  proxy.blackhole();
  // Node fires a timer of Infinity ms after 1 ms: taken at its word, the check would PING at once and cut the silent connection.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect((await server.client().status({})).watchers).toBe(1);
  await followed.stop();
});

it("muster serve takes the limits from its settings, and explains a bad one", async () => {
  const limits = { MUSTER_PEER_CHECK_SECONDS: "0.3", MUSTER_PEER_TIMEOUT_SECONDS: "0.3", MUSTER_FIRST_BYTES_SECONDS: "0.5" };
  const serving = MusterProcess.serve({ ...limits, MUSTER_DATA_DIR: await tempDataDir() });
  const url = await serving.ready();
  const proxy = await startBlackholeProxy(url);
  const followed = followWatcher(new RegistryWatcher(createRegistryClient({ baseUrl: proxy.url }), { service: "jobs" }));
  const direct = createRegistryClient({ baseUrl: url });
  await expect.poll(async () => (await direct.status({})).watchers).toBe(1);
  proxy.blackhole();
  await expect.poll(async () => (await direct.status({})).watchers, { timeout: 5_000 }).toBe(0);
  const startedAt = Date.now();
  const silent = connect(Number(new URL(url).port), "127.0.0.1");
  await new Promise((resolve) => silent.on("error", () => undefined).on("close", resolve));
  expect(Date.now() - startedAt).toBeLessThan(5_000);
  await followed.stop();
  await serving.kill("SIGTERM");

  const refused = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0"], { MUSTER_PEER_TIMEOUT_SECONDS: "0" });
  expect(refused.code).toBe(1);
  expect(refused.stderr.trim()).toBe('muster: peer timeout (peerTimeoutSeconds, MUSTER_PEER_TIMEOUT_SECONDS) must be a number of seconds above 0 and at most a day (got "0")');
}, 20_000);
