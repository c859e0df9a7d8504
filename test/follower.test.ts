import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { LeaderLink } from "../src/cli/leader-link.js";
import type { HistoryBranch } from "../src/domain/registry.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { instanceFromWire } from "../src/server/convert.js";
import { EventType, HealthStatus, InstanceSchema, RegisterRequestSchema, type Instance, type WatchResponse } from "../gen/muster/v1/registry_pb.js";
import { startBlackholeProxy, type BlackholeProxy } from "./support/blackhole-proxy.js";
import { callError } from "./support/call-error.js";
import type { RegistryClient } from "./support/clients.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { freePort } from "./support/machine.js";
import { grpcFrame, rawHttp2Post } from "./support/raw-http2.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { tlsFiles, tlsPem } from "./support/tls-fixtures.js";
import { WatchReader } from "./support/watch-reader.js";

// A follower copies its leader through one Watch, at the leader's revisions, serves reads and refuses writes;
// restarted without --follow it is a registry of its own that carries on from the leader's revision.

const ttl = durationFromMs(600_000);
const instance = (id: string, service = "api") => ({ service, id, address: `10.0.0.${id.length}:80`, ttl });
const everything = { includeUnhealthy: true, includeDrained: true };
const silent = pino({ level: "silent" });

/** What Discover shows of each instance, without the last heartbeat (a follower hears of heartbeats once a second, not with the changes). */
const shown = (instances: readonly Instance[]) => instances.map(({ service, id, address, health, revision, drain }) => ({ service, id, address, health, revision, drain: drain?.reason }));

/** A follower of `leader`, in this process, on `dataDir` (fresh when absent), with its link started. */
async function startFollower(leader: string, { dataDir, historyLimit, metrics, port }: { dataDir?: string; historyLimit?: number; metrics?: boolean; port?: number } = {}): Promise<{ server: TestRegistry; link: LeaderLink }> {
  const link = new LeaderLink(leader, {}, silent);
  const server = await TestRegistry.start({ dataDir, metrics, port, following: link, registry: { historyLimit } });
  link.start(server.registry);
  onTestFinished(() => link.stop());
  return { server, link };
}

/**
 * A follower whose copy of the leader lags `lagMs` behind (its link goes
 * through a proxy), while the writes it is given go straight to the leader.
 */
async function startLaggingFollower(leader: string, lagMs: number): Promise<{ server: TestRegistry; proxy: BlackholeProxy }> {
  const proxy = await startBlackholeProxy(leader, { lagMs });
  const link = new LeaderLink(proxy.url, {}, silent);
  const writes = createRegistryClient({ baseUrl: leader });
  const server = await TestRegistry.start({ following: { leader, writes, get state() { return link.state; } } });
  link.start(server.registry);
  onTestFinished(() => link.stop());
  return { server, proxy };
}

async function caughtUp(follower: RegistryClient, leader: RegistryClient): Promise<bigint> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [{ revision }, copied] = await Promise.all([leader.status({}), follower.status({})]);
    if (copied.revision === revision) return revision;
    if (Date.now() > deadline) throw new Error(`the follower is at ${copied.revision}, the leader at ${revision}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function expectSameState(follower: RegistryClient, leader: RegistryClient): Promise<void> {
  const revision = await caughtUp(follower, leader);
  const [copied, original] = await Promise.all([follower.discover(everything), leader.discover(everything)]);
  expect(copied.revision).toBe(revision);
  expect(shown(copied.instances)).toEqual(shown(original.instances));
}

/** The events of `messages`, as type, id, revision and removed. */
const eventsOf = (messages: readonly WatchResponse[]) => messages.flatMap((message) => message.events.map((event) => [EventType[event.type], event.instance?.id, event.revision, event.removed]));

async function eventsUpTo(reader: WatchReader, revision: bigint): Promise<WatchResponse[]> {
  const messages: WatchResponse[] = [];
  while ((messages.at(-1)?.revision ?? 0n) < revision) messages.push(await reader.next());
  return messages;
}

describe("a follower (muster serve --follow)", () => {
  it("copies every change at the leader's revisions and serves them on every protocol", async () => {
    const leader = await TestRegistry.start();
    const original = leader.client();
    await original.register({ instance: instance("a") });
    await original.register({ instance: instance("bb") });
    await original.register({ instance: instance("ccc", "web") });
    const { server } = await startFollower(leader.url);
    const copy = server.client();
    await expectSameState(copy, original);
    expect((await copy.status({})).following).toMatchObject({ leader: leader.url, connected: true, lastError: "", leaderRevision: (await original.status({})).revision });
    expect((await original.status({})).following).toBeUndefined();

    // Live changes of every kind, watched on both sides from the same revision.
    const from = (await original.status({})).revision;
    const onLeader = new WatchReader(original.watch({ ...everything, sinceRevision: from }));
    const onFollower = new WatchReader(copy.watch({ ...everything, sinceRevision: from }));
    await original.drain({ service: "api", id: "bb", reason: "canary pulled" });
    await original.heartbeat({ service: "api", id: "a", status: HealthStatus.UNHEALTHY });
    await original.register({ instance: { ...instance("a"), address: "10.9.9.9:81" } });
    await original.deregister({ service: "web", id: "ccc" });
    await original.undrain({ service: "api", id: "bb" });
    const last = (await original.status({})).revision;
    const [seenOnLeader, seenOnFollower] = await Promise.all([eventsUpTo(onLeader, last), eventsUpTo(onFollower, last)]);
    expect(eventsOf(seenOnFollower)).toEqual(eventsOf(seenOnLeader));
    const times = (messages: readonly WatchResponse[]) => messages.flatMap((message) => message.events.map((event) => event.time));
    expect(times(seenOnFollower)).toEqual(times(seenOnLeader));
    expect(eventsOf(seenOnFollower).map(([type]) => type)).toEqual(["DRAIN_CHANGED", "HEALTH_CHANGED", "UPDATED", "DEREGISTERED", "DRAIN_CHANGED"]);
    await expectSameState(copy, original);
    for (const transport of ["Connect JSON over HTTP/1.1", "gRPC-Web over HTTP/1.1"]) {
      expect(shown((await server.client(transport).discover({ service: "api" })).instances)).toEqual(shown((await original.discover({ service: "api" })).instances));
    }
    const grpcJs = grpcJsClient(server.url);
    onTestFinished(() => grpcJs.close());
    const byGrpcJs = (await grpcJs.unary("Discover", { service: "api" })).instances as { address: string }[];
    expect(byGrpcJs.map((found) => found.address)).toEqual(["10.9.9.9:81", "10.0.0.2:80"]);
    // Its own registry takes changes only as copies: a write made on it directly, not through the server, is refused.
    const before = server.registry.currentRevision();
    await expect(server.registry.register(instanceFromWire(create(InstanceSchema, instance("d"))))).rejects.toThrow(`this registry is a read-only follower of ${leader.url}: send writes to the leader`);
    await expect(server.registry.deregister("api", "a")).rejects.toMatchObject({ code: "failed-precondition" });
    expect(server.registry.currentRevision()).toBe(before);
  });

  it("shows the leader's last_heartbeat_at, down a chain, about a second after each heartbeat that changes nothing", async () => {
    const leader = await TestRegistry.start();
    const original = leader.client();
    await original.register({ instance: instance("a") });
    await original.register({ instance: instance("b", "web") });
    const { server: middle } = await startFollower(leader.url);
    const { server: end } = await startFollower(middle.url);
    const revision = await caughtUp(end.client(), original);
    const lastHeartbeat = async (client: RegistryClient, service: string) => {
      const [found] = (await client.discover({ service })).instances;
      return found?.lastHeartbeatAt === undefined ? undefined : timestampMs(found.lastHeartbeatAt);
    };
    const registered = await lastHeartbeat(original, "api");
    await new Promise((resolve) => setTimeout(resolve, 20));
    // One heartbeat on the leader, one through the end of the chain; neither changes anything.
    await original.heartbeat({ service: "api", id: "a" });
    await end.client().heartbeat({ service: "web", id: "b" });
    const beaten = { api: await lastHeartbeat(original, "api"), web: await lastHeartbeat(original, "web") };
    expect(beaten.api).toBeGreaterThan(registered ?? Infinity);
    for (const follower of [middle, end]) {
      await expect.poll(() => lastHeartbeat(follower.client(), "api"), { timeout: 5_000 }).toBe(beaten.api);
      await expect.poll(() => lastHeartbeat(follower.client(), "web"), { timeout: 5_000 }).toBe(beaten.web);
      expect((await follower.client().status({})).revision).toBe(revision);
    }
    expect((await original.status({})).revision).toBe(revision);
    // A change written after a heartbeat carries a later time than the copied heartbeat's: the later one shows.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await original.register({ instance: { ...instance("a"), address: "10.9.9.9:81" } });
    await caughtUp(end.client(), original);
    const reregistered = await lastHeartbeat(original, "api");
    expect(reregistered).toBeGreaterThan(beaten.api ?? Infinity);
    expect(await lastHeartbeat(end.client(), "api")).toBe(reregistered);
  });

  it("sends every write on to its leader and answers once its own copy holds it, on every protocol, and the leader's errors come back as they were", async () => {
    const leader = await TestRegistry.start();
    const original = leader.client();
    // Its copy lags 300 ms behind, so only waiting for it shows each write at once.
    const { server, proxy } = await startLaggingFollower(leader.url, 300);
    const copy = server.client();
    const grpcJs = grpcJsClient(server.url);
    onTestFinished(() => grpcJs.close());
    /** The follower's own view of service api, read right after a write was answered, with no waiting in between. */
    const onFollower = async () => (await copy.discover({ ...everything, service: "api" })).instances.map(({ id, health, drain }) => [id, HealthStatus[health], drain?.reason ?? ""]);

    const registered = await copy.register({ instance: instance("a") });
    expect(await onFollower()).toEqual([["a", "HEALTHY", ""]]);
    expect(registered.revision).toBe((await original.status({})).revision);
    await server.client("Connect JSON over HTTP/1.1").drain({ service: "api", id: "a", reason: "canary pulled" });
    expect(await onFollower()).toEqual([["a", "HEALTHY", "canary pulled"]]);
    await grpcJs.unary("Heartbeat", { service: "api", id: "a", status: "HEALTH_STATUS_UNHEALTHY" });
    expect(await onFollower()).toEqual([["a", "UNHEALTHY", "canary pulled"]]);
    await server.client("gRPC-Web over HTTP/1.1").undrain({ service: "api", id: "a" });
    expect(await onFollower()).toEqual([["a", "UNHEALTHY", ""]]);
    await server.client("gRPC JSON over HTTP/2").register({ instance: instance("bb") });
    expect((await onFollower()).map(([id]) => id)).toEqual(["a", "bb"]);
    const { revision } = await copy.deregister({ service: "api", id: "a" });
    expect(await onFollower()).toEqual([["bb", "HEALTHY", ""]]);
    expect((await copy.status({})).revision).toBe(revision);
    await expectSameState(copy, original);
    // The writes are the leader's: it holds them, with the ttl they were registered with.
    expect((await original.heartbeat({ service: "api", id: "bb" })).ttl?.seconds).toBe(600n);

    // Bad input and missing instances: the leader's error, word for word, and nothing stored on either side.
    const badInstance = { ...instance("c"), address: "no port" };
    const direct = await callError(original.register({ instance: badInstance }));
    expect(direct.rawMessage).toMatch(/^instance\.address: /);
    // The leader's response headers stay behind: on Connect they would turn the error into a bare HTTP 400.
    for (const transport of ["gRPC over HTTP/2", "Connect JSON over HTTP/1.1", "gRPC-Web over HTTP/1.1"]) {
      const viaFollower = await callError(server.client(transport).register({ instance: badInstance }));
      expect([transport, viaFollower.code, viaFollower.rawMessage]).toEqual([transport, Code.InvalidArgument, direct.rawMessage]);
    }
    const notFound = await grpcJs.unary("Deregister", { service: "api", id: "gone" }).catch((error: unknown) => error);
    expect(notFound).toMatchObject({ code: Code.NotFound, details: (await callError(original.deregister({ service: "api", id: "gone" }))).rawMessage });
    expect((await original.status({})).revision).toBe(revision);
    expect((await copy.status({})).revision).toBe(revision);

    // The copy cannot follow (the link went silent): the leader's answer still comes, after the wait, and the write is there.
    proxy.blackhole();
    const late = await copy.register({ instance: instance("late") });
    expect((await original.discover({ service: "api" })).revision).toBe(late.revision);
    expect((await copy.status({})).revision).toBe(revision);

    // A leader that cannot be reached: UNAVAILABLE naming it, which agents retry; reads go on.
    await leader.stop();
    const unreachable = await callError(copy.heartbeat({ service: "api", id: "bb" }));
    expect(unreachable.code).toBe(Code.Unavailable);
    expect(unreachable.rawMessage.startsWith(`this follower could not send the write to its leader ${leader.url}: `)).toBe(true);
    expect((await copy.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["bb"]);
  });

  it("ends a write that waits for its copy at the caller's grpc-timeout, with DEADLINE_EXCEEDED", async () => {
    const leader = await TestRegistry.start();
    const { server } = await startLaggingFollower(leader.url, 2_000);
    const session = http2.connect(server.url);
    onTestFinished(() => session.close());
    const started = Date.now();
    // Raw, so that no client-side timer answers first: the deadline is the server's to keep.
    const request = grpcFrame(toBinary(RegisterRequestSchema, create(RegisterRequestSchema, { instance: instance("late") })));
    const answer = await rawHttp2Post(session, "/muster.v1.RegistryService/Register", "application/grpc", request, { "grpc-timeout": "300m" });
    expect([answer.grpcStatus, answer.grpcMessage]).toEqual([String(Code.DeadlineExceeded), "the operation timed out"]);
    expect(Date.now() - started).toBeLessThan(1_500);
    // The leader took the write: a deadline leaves the caller not knowing, as gRPC means it to.
    await expect.poll(async () => (await leader.client().discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["late"]);
  });

  it("follows a follower: a chain copies at the leader's revisions, and a write at its end reaches the leader and comes back down", async () => {
    const leader = await TestRegistry.start();
    const { server: middle } = await startFollower(leader.url);
    const { server: end } = await startFollower(middle.url);
    const { revision } = await end.client().register({ instance: instance("a") });
    expect((await end.client().discover({ service: "api" })).instances.map((found) => [found.id, found.revision])).toEqual([["a", revision]]);
    expect((await leader.client().status({})).revision).toBe(revision);
    await expectSameState(middle.client(), leader.client());
    await leader.client().drain({ service: "api", id: "a", reason: "down the chain" });
    await expectSameState(end.client(), leader.client());
    expect((await end.client().status({})).following).toMatchObject({ leader: middle.url, connected: true });
  });

  it("resumes from its own revision after a restart and after the leader was away, with a gap-free log of its own", async () => {
    const port = await freePort();
    const leaderDir = await tempDataDir();
    let leader = await TestRegistry.start({ port, dataDir: leaderDir });
    await leader.client().register({ instance: instance("a") });
    const followerDir = await tempDataDir();
    let follower = await startFollower(leader.url, { dataDir: followerDir });
    const joinedAt = await caughtUp(follower.server.client(), leader.client());
    // Its revisions are the leader's, so its history is too: a watcher may resume on either.
    expect((await follower.server.client().status({})).history).toBe((await leader.client().status({})).history);

    // The follower stops; the leader goes on; the follower comes back and copies what it missed as changes.
    await follower.link.stop();
    expect(follower.link.state).toMatchObject({ connected: false, lastError: "this follower stopped following" });
    await follower.server.stop();
    await leader.client().register({ instance: instance("bb") });
    await leader.client().deregister({ service: "api", id: "a" });
    follower = await startFollower(leader.url, { dataDir: followerDir, metrics: true });
    await expectSameState(follower.server.client(), leader.client());
    const followerMetrics = async () => {
      const body = await (await fetch(`${follower.server.url}/metrics`)).text();
      return ["muster_follower_connected", "muster_follower_leader_revision", "muster_revision"].map((name) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(body)?.[1]));
    };
    expect(await followerMetrics()).toEqual([1, Number(joinedAt) + 2, Number(joinedAt) + 2]);
    const resumed = new WatchReader(follower.server.client().watch({ ...everything, sinceRevision: joinedAt }));
    const missed = await resumed.next();
    expect(missed.snapshot).toBe(false);
    expect(eventsOf([missed])).toEqual([["REGISTERED", "bb", joinedAt + 1n, false], ["DEREGISTERED", "a", joinedAt + 2n, true]]);

    // The leader goes away: the follower says so and keeps serving what it has; the leader returns on its port.
    await leader.stop();
    await expect.poll(async () => (await follower.server.client().status({})).following?.connected, { timeout: 10_000 }).toBe(false);
    expect((await follower.server.client().status({})).following?.lastError).not.toBe("");
    expect(await followerMetrics()).toEqual([0, Number(joinedAt) + 2, Number(joinedAt) + 2]);
    expect((await follower.server.client().discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["bb"]);
    leader = await TestRegistry.start({ port, dataDir: leaderDir });
    await leader.client().register({ instance: instance("ccc") });
    await expectSameState(follower.server.client(), leader.client());
    expect((await follower.server.client().status({})).following).toMatchObject({ connected: true, lastError: "" });
    expect(eventsOf([await resumed.nextWithEvents()])).toEqual([["REGISTERED", "ccc", joinedAt + 3n, false]]);
  });

  it("takes a snapshot when the leader's log no longer holds its revision, and its watchers then get one too", async () => {
    const leader = await TestRegistry.start({ registry: { historyLimit: 3 } });
    const original = leader.client();
    for (const id of ["a", "bb", "ccc"]) await original.register({ instance: instance(id) });
    const followerDir = await tempDataDir();
    let follower = await startFollower(leader.url, { dataDir: followerDir, historyLimit: 3 });
    await caughtUp(follower.server.client(), original);
    // One change copied as a change, so the follower's own log holds an event from before the snapshot to come.
    await original.register({ instance: instance("x") });
    const joinedAt = await caughtUp(follower.server.client(), original);
    const watching = new WatchReader(follower.server.client().watch({ ...everything, sinceRevision: joinedAt }));
    expect((await watching.next()).events).toEqual([]);

    await follower.link.stop();
    for (const id of ["dddd", "eeeee", "ffffff", "ggggggg"]) await original.register({ instance: instance(id) });
    await original.deregister({ service: "api", id: "a" });
    follower.link = new LeaderLink(leader.url, {}, silent);
    follower.link.start(follower.server.registry);
    onTestFinished(() => follower.link.stop());
    await expectSameState(follower.server.client(), original);
    // Its watchers cannot be told what happened between its old revision and the snapshot's: they are ended, and resume from a snapshot.
    await expect(watching.next()).rejects.toThrow(/fresh snapshot from its leader/);
    for (const since of [joinedAt - 1n, joinedAt]) {
      const resumed = new WatchReader(follower.server.client().watch({ ...everything, sinceRevision: since }));
      const snapshot = await resumed.next();
      expect(snapshot.snapshot).toBe(true);
      expect(snapshot.events.map((event) => event.instance?.id)).toEqual(["bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg", "x"]);
    }

    // What it wrote loads again (the store's revision and event log agree), and it goes on copying changes.
    await follower.link.stop();
    await follower.server.stop();
    follower = await startFollower(leader.url, { dataDir: followerDir, historyLimit: 3 });
    await original.register({ instance: instance("hhhhhhhh") });
    await expectSameState(follower.server.client(), original);
  });

  it("brought back as the follower of the follower promoted in its place, drops the writes only it took and copies the new leader's", async () => {
    const oldLeaderDir = await tempDataDir();
    const oldLeader = await TestRegistry.start({ dataDir: oldLeaderDir });
    await oldLeader.client().register({ instance: instance("a") });
    const followerDir = await tempDataDir();
    const follower = await startFollower(oldLeader.url, { dataDir: followerDir });
    const copiedAt = await caughtUp(follower.server.client(), oldLeader.client());
    await follower.link.stop();
    await follower.server.stop();
    // The old leader takes a write the follower never copies, then goes away; the follower is promoted and takes another at the same revision.
    expect((await oldLeader.client().register({ instance: instance("lost") })).revision).toBe(copiedAt + 1n);
    await oldLeader.stop();
    const promoted = await TestRegistry.start({ dataDir: followerDir });
    expect((await promoted.client().register({ instance: instance("kept") })).revision).toBe(copiedAt + 1n);

    const rejoined = await startFollower(promoted.url, { dataDir: oldLeaderDir });
    await expect.poll(async () => (await rejoined.server.client().discover({ service: "api" })).instances.map((found) => found.id), { timeout: 10_000 }).toEqual(["a", "kept"]);
    await expectSameState(rejoined.server.client(), promoted.client());
    // It goes on copying the new leader's changes as changes.
    await promoted.client().deregister({ service: "api", id: "a" });
    await expectSameState(rejoined.server.client(), promoted.client());
  });

  it("restarted without --follow, takes writes and carries on from the leader's revision in a history of its own, tracking liveness", async () => {
    const leader = await TestRegistry.start();
    const original = leader.client();
    await original.register({ instance: { ...instance("a"), ttl: durationFromMs(1_000), deregisterAfter: durationFromMs(1_000) } });
    await original.register({ instance: instance("bb") });
    const followerDir = await tempDataDir();
    const follower = await startFollower(leader.url, { dataDir: followerDir });
    const copiedAt = await caughtUp(follower.server.client(), original);
    const watcher = new WatchReader(original.watch({ ...everything, sinceRevision: copiedAt }));
    expect((await watcher.next()).revision).toBe(copiedAt);
    const leaderHistory = (await original.status({})).history;

    await follower.link.stop();
    // The leader takes one more write, which the follower never copies, then goes away.
    const { revision: lostAt } = await original.register({ instance: instance("lost") });
    await follower.server.stop();
    await leader.stop();
    const branches: HistoryBranch[] = [];
    const promoted = await TestRegistry.start({ dataDir: followerDir, registry: { onHistoryBranched: (branch) => branches.push(branch) } });
    const client = promoted.client();
    const status = await client.status({});
    expect([status.following, status.history === leaderHistory]).toEqual([undefined, false]);
    expect(branches).toEqual([{ why: "promoted", revision: Number(copiedAt), from: leaderHistory, to: status.history }]);
    const { revision } = await client.register({ instance: instance("ccc") });
    expect([revision, lostAt]).toEqual([copiedAt + 1n, copiedAt + 1n]);
    // A watcher of the old leader resumes here with the revision it had, and misses nothing.
    const resumed = new WatchReader(client.watch({ ...everything, sinceRevision: copiedAt, history: leaderHistory }));
    expect(eventsOf([await resumed.nextWithEvents()])).toEqual([["REGISTERED", "ccc", copiedAt + 1n, false]]);
    // One that saw the write only the old leader took gets a snapshot: here that revision is another change.
    const ahead = await new WatchReader(client.watch({ ...everything, sinceRevision: lostAt, history: leaderHistory })).next();
    expect([ahead.snapshot, ahead.events.map((event) => event.instance?.id), ahead.history]).toEqual([true, ["a", "bb", "ccc"], status.history]);
    // Liveness runs again: the copied instance with a 1s ttl and no heartbeat goes unhealthy, then expires; the heartbeating one stays.
    const beating = setInterval(() => void client.heartbeat({ service: "api", id: "bb" }).catch(() => undefined), 300);
    onTestFinished(() => clearInterval(beating));
    const changes = eventsOf([await resumed.nextWithEvents(), await resumed.nextWithEvents()]);
    expect(changes.map(([type, id]) => [type, id])).toEqual([["HEALTH_CHANGED", "a"], ["EXPIRED", "a"]]);
    expect((await client.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["bb", "ccc"]);
  });

  it("takes on the history its leader took when promoted, and promoted in turn, still resumes watchers of the first leader", async () => {
    const leader = await TestRegistry.start();
    const original = leader.client();
    await original.register({ instance: instance("a") });
    const leaderHistory = (await original.status({})).history;
    const middleDir = await tempDataDir();
    const middle = await startFollower(leader.url, { dataDir: middleDir, port: await freePort() });
    const end = await startFollower(middle.server.url);
    const sharedAt = await caughtUp(end.server.client(), original);

    // The middle of the chain is promoted while the old leader goes on: the two split after sharedAt.
    await middle.link.stop();
    await middle.server.stop();
    await original.register({ instance: instance("lost") });
    const promoted = await TestRegistry.start({ dataDir: middleDir, port: Number(new URL(middle.server.url).port) });
    await promoted.client().register({ instance: instance("kept") });
    const promotedStatus = await promoted.client().status({});
    const promotedHistory = promotedStatus.history;
    expect(promotedStatus.historyForks.map((fork) => [fork.history, fork.revision])).toEqual([[leaderHistory, sharedAt]]);
    // The end of the chain resumes from it without a snapshot, and counts in its history from then on.
    await expect.poll(async () => (await end.server.client().status({})).history, { timeout: 15_000 }).toBe(promotedHistory);
    await expectSameState(end.server.client(), promoted.client());
    // So its watchers resume on the old leader only with a snapshot: there, sharedAt + 1 is another change.
    const elsewhere = await new WatchReader(original.watch({ ...everything, sinceRevision: sharedAt + 1n, history: promotedHistory })).next();
    expect([elsewhere.snapshot, elsewhere.events.map((event) => event.instance?.id)]).toEqual([true, ["a", "lost"]]);

    // Promoted in turn, the end of the chain resumes a watcher of the first leader from before the split: two forks back.
    await end.link.stop();
    await end.server.stop();
    const twiceServer = await TestRegistry.start({ dataDir: end.server.dataDir });
    const twice = twiceServer.client();
    const twiceUrl = twiceServer.url;
    const resumed = new WatchReader(twice.watch({ ...everything, sinceRevision: sharedAt, history: leaderHistory }));
    const first = await resumed.nextWithEvents();
    expect([first.snapshot, eventsOf([first])]).toEqual([false, [["REGISTERED", "kept", sharedAt + 1n, false]]]);
    const fromPromoted = await new WatchReader(twice.watch({ ...everything, sinceRevision: sharedAt + 1n, history: promotedHistory })).next();
    expect([fromPromoted.snapshot, fromPromoted.revision]).toEqual([false, sharedAt + 1n]);
    const twiceStatus = await twice.status({});
    expect(twiceStatus.history).not.toBe(promotedHistory);
    expect(twiceStatus.historyForks.map((fork) => [fork.history, fork.revision])).toEqual([
      [promotedHistory, sharedAt + 1n],
      [leaderHistory, sharedAt],
    ]);
    const shown = await MusterProcess.run(["status", "--registry", twiceUrl]);
    expect(shown.stdout).toContain(`revision   ${sharedAt + 1n} (history ${twiceStatus.history}, branched from ${promotedHistory} at ${sharedAt + 1n}, which branched from ${leaderHistory} at ${sharedAt})`);
  });

  it("follows a leader that requires client certificates with --follow-ca, --follow-cert and --follow-key, and sends writes there under that certificate", async () => {
    const leader = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() }, ["--tls-cert", tlsFiles.cert, "--tls-key", tlsFiles.key, "--tls-client-ca", tlsFiles.clientCa]);
    onTestFinished(() => leader.kill("SIGINT").then(() => undefined));
    const leaderUrl = await leader.ready();
    const original = createRegistryClient({ baseUrl: leaderUrl, ca: tlsPem.ca, cert: tlsPem.clientCert, key: tlsPem.clientKey });
    await original.register({ instance: instance("a") });

    const follower = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_FOLLOW: leaderUrl, MUSTER_FOLLOW_CA: tlsFiles.ca }, ["--follow-cert", tlsFiles.clientCert, "--follow-key", tlsFiles.clientKey]);
    onTestFinished(() => follower.kill("SIGINT").then(() => undefined));
    const copy = createRegistryClient({ baseUrl: await follower.ready() });
    await expectSameState(copy, original);
    await copy.register({ instance: instance("bb") });
    expect((await original.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["a", "bb"]);

    // Without a certificate the leader refuses the follower, and its status says so.
    const stranger = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_FOLLOW: leaderUrl, MUSTER_FOLLOW_CA: tlsFiles.ca });
    onTestFinished(() => stranger.kill("SIGINT").then(() => undefined));
    const strangerUrl = await stranger.ready();
    await stranger.line((line) => line.includes("lost the leader"));
    expect((await createRegistryClient({ baseUrl: strangerUrl }).status({})).following?.lastError).toMatch(/client certificate is required/);
  });

  it("runs as `muster serve --follow`: status names the leader, the leader's token is used, and bad settings stop it with one line", async () => {
    const tokens = await tempDataDir();
    const { writeFileSync } = await import("node:fs");
    writeFileSync(`${tokens}/tokens`, "write writer-secret-0123456789\nread reader-secret-0123456789\n");
    const leader = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_ACCESS_TOKENS_FILE: `${tokens}/tokens` });
    onTestFinished(() => leader.kill("SIGINT").then(() => undefined));
    const leaderUrl = await leader.ready();
    const writer = { MUSTER_TOKEN: "writer-secret-0123456789" };
    await createRegistryClient({ baseUrl: leaderUrl, token: writer.MUSTER_TOKEN }).register({ instance: instance("a") });

    const follower = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_FOLLOW: leaderUrl, MUSTER_FOLLOW_TOKEN: "reader-secret-0123456789" });
    onTestFinished(() => follower.kill("SIGINT").then(() => undefined));
    const followerUrl = await follower.ready();
    await follower.line((line) => line.includes("following the leader"));
    const statusLine = async () => (await MusterProcess.run(["status", "--registry", followerUrl])).stdout.split("\n").find((line) => line.startsWith("leader"));
    await expect.poll(statusLine, { timeout: 10_000 }).toBe(`leader     ${leaderUrl} (following, up to date at revision 1; writes go there)`);
    // A write given to the follower is made on the leader with the writer's own token, and the follower shows it at once.
    const drained = await MusterProcess.run(["drain", "api", "a", "--reason", "moving racks", "--registry", followerUrl], writer);
    expect([drained.code, drained.stderr]).toEqual([0, ""]);
    expect((await MusterProcess.run(["ls", "api", "--all", "--registry", followerUrl])).stdout).toMatch(/\ba\b.*HEALTHY \(drained\)/);
    const withoutToken = await MusterProcess.run(["undrain", "api", "a", "--registry", followerUrl]);
    expect(withoutToken.stderr).toContain("a token is required; set MUSTER_TOKEN");
    const withReadToken = await MusterProcess.run(["undrain", "api", "a", "--registry", followerUrl], { MUSTER_TOKEN: "reader-secret-0123456789" });
    expect(withReadToken.code).not.toBe(0);
    expect(withReadToken.stderr.trim()).toBe("muster: the token may only read; Undrain needs a write token");
    expect((await MusterProcess.run(["ls", "api", "--all", "--registry", leaderUrl], writer)).stdout).toMatch(/HEALTHY \(drained\)/);

    // Without the token the leader refuses it, and its status says why.
    const stranger = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_FOLLOW: leaderUrl });
    onTestFinished(() => stranger.kill("SIGINT").then(() => undefined));
    const strangerUrl = await stranger.ready();
    await stranger.line((line) => line.includes("lost the leader"));
    expect((await MusterProcess.run(["status", "--registry", strangerUrl])).stdout).toMatch(/NOT REACHED: \[unauthenticated\] .*; give this follower a read token of the leader \(MUSTER_FOLLOW_TOKEN\)/);

    for (const [env, message] of [
      [{ MUSTER_FOLLOW: "10.0.0.5:6878" }, `the leader to follow (--follow, MUSTER_FOLLOW, "follow") must be a registry's URL such as http://10.0.0.5:6878 (got "10.0.0.5:6878")`],
      [{ MUSTER_FOLLOW_TOKEN: "reader-secret-0123456789" }, "a leader's token, CA or client certificate (MUSTER_FOLLOW_TOKEN, --follow-ca, --follow-cert) needs a leader to follow: give --follow URL (MUSTER_FOLLOW) too"],
      [{ MUSTER_FOLLOW: "https://10.0.0.5:6878", MUSTER_FOLLOW_CERT: "client.pem" }, "a client certificate for the leader needs its key: --follow-cert (MUSTER_FOLLOW_CERT) and --follow-key (MUSTER_FOLLOW_KEY) go together"],
    ] as const) {
      const exit = await MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), ...env }).exited;
      expect(exit.code).not.toBe(0);
      expect(exit.stderr.trim()).toBe(`muster: ${message}`);
    }
  });
});
