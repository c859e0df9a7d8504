import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it, onTestFinished } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { EventType, type Instance } from "../gen/muster/v1/registry_pb.js";
import { callError } from "./support/call-error.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";

// Zones are failure domains: Discover and Watch filter by them, and a zone's maintenance drains it in one command.

const ttl = durationFromMs(600_000);
const fleet = [["a", "eu-1a"], ["b", "eu-1a"], ["c", "eu-1b"], ["d", ""]] as const;
const ids = (instances: readonly Instance[]) => instances.map((instance) => instance.id);

describe("the zone filter", () => {
  it("narrows Discover, Watch and Prometheus' targets to one zone, and refuses a zone no instance may have", async () => {
    const server = await TestRegistry.start();
    const client = server.client("Connect JSON over HTTP/1.1");
    for (const [id, zone] of fleet) await client.register({ instance: { service: "api", id, zone, address: "10.0.0.1:80", ttl } });
    expect(ids((await client.discover({ service: "api", zone: "eu-1a" })).instances)).toEqual(["a", "b"]);
    expect(ids((await server.client().discover({ zone: "eu-1b" })).instances)).toEqual(["c"]);
    expect(ids((await client.discover({ service: "api" })).instances)).toEqual(["a", "b", "c", "d"]);

    const watcher = new WatchReader(server.client().watch({ service: "api", zone: "eu-1b" }));
    expect(ids((await watcher.next()).events.flatMap((event) => (event.instance === undefined ? [] : [event.instance])))).toEqual(["c"]);
    await client.register({ instance: { service: "api", id: "e", zone: "eu-1b", address: "10.0.0.2:80", ttl } });
    await client.register({ instance: { service: "api", id: "f", zone: "eu-1a", address: "10.0.0.3:80", ttl } });
    // An instance moving into the zone arrives; one moving out leaves.
    await client.register({ instance: { service: "api", id: "a", zone: "eu-1b", address: "10.0.0.1:80", ttl } });
    await client.register({ instance: { service: "api", id: "c", zone: "eu-1a", address: "10.0.0.1:80", ttl } });
    const seen: [EventType, string | undefined, boolean][] = [];
    while (seen.length < 3) seen.push(...(await watcher.nextWithEvents()).events.map((event): [EventType, string | undefined, boolean] => [event.type, event.instance?.id, event.removed]));
    expect(seen).toEqual([[EventType.REGISTERED, "e", false], [EventType.UPDATED, "a", false], [EventType.UPDATED, "c", true]]);

    const targets = await (await fetch(`${server.url}/prometheus/targets?zone=eu-1a`)).json() as { labels: { __meta_muster_id: string } }[];
    expect(targets.map((group) => group.labels.__meta_muster_id)).toEqual(["b", "c", "f"]);

    const before = server.registry.currentRevision();
    const refused = await callError(client.discover({ zone: "eu 1a" }));
    expect([refused.code, refused.rawMessage]).toEqual([Code.InvalidArgument, 'zone: label values must be empty or 1-63 letters, digits, \'-\', \'_\' or \'.\' starting and ending with a letter or digit (got "eu 1a")']);
    expect((await callError(server.client().watch({ zone: "-x" })[Symbol.asyncIterator]().next())).code).toBe(Code.InvalidArgument);
    expect(server.registry.currentRevision()).toBe(before);
  });

  it("lets muster ls pick a zone, and muster drain and undrain take a zone out of discovery and back", async () => {
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() });
    const url = await server.ready();
    onTestFinished(() => server.kill("SIGTERM").then(() => undefined));
    const client = createRegistryClient({ baseUrl: url });
    for (const [id, zone] of fleet) await client.register({ instance: { service: "api", id, zone, address: "10.0.0.1:80", ttl } });
    const env = { MUSTER_REGISTRY: url };
    const listed = async (...args: string[]) => (await MusterProcess.run(["ls", "api", "-o", "json", ...args], env)).stdout;

    expect((JSON.parse(await listed("--zone", "eu-1a")) as { id: string }[]).map((instance) => instance.id)).toEqual(["a", "b"]);
    const drained = await MusterProcess.run(["drain", "api", "--zone", "eu-1a", "--reason", "zone maintenance"], env);
    expect([drained.code, drained.stdout]).toEqual([0, "drained 2 instances of api: a, b\n"]);
    expect((JSON.parse(await listed()) as { id: string }[]).map((instance) => instance.id)).toEqual(["c", "d"]);
    const reasons = (await client.discover({ service: "api", includeDrained: true })).instances.map((instance) => [instance.id, instance.drain?.reason]);
    expect(reasons).toEqual([["a", "zone maintenance"], ["b", "zone maintenance"], ["c", undefined], ["d", undefined]]);

    const undrained = await MusterProcess.run(["undrain", "api", "--zone", "eu-1a"], env);
    expect([undrained.code, undrained.stdout]).toEqual([0, "undrained 2 instances of api: a, b\n"]);
    expect((JSON.parse(await listed()) as { id: string }[]).map((instance) => instance.id)).toEqual(["a", "b", "c", "d"]);
    const one = await MusterProcess.run(["drain", "api", "--zone", "eu-1b"], env);
    expect([one.code, one.stdout]).toEqual([0, "drained 1 instance of api: c\n"]);
    const oneBack = await MusterProcess.run(["undrain", "api", "--zone", "eu-1b"], env);
    expect([oneBack.code, oneBack.stdout]).toEqual([0, "undrained 1 instance of api: c\n"]);

    const whole = await MusterProcess.run(["drain", "api"], env);
    expect([whole.code, whole.stderr]).toEqual([1, "muster: name one instance, or choose several with --zone, --selector, --tag, --version or --capability: 'drain' does not take a whole service without one\n"]);
    const none = await MusterProcess.run(["drain", "api", "--zone", "mars-1"], env);
    expect([none.code, none.stderr]).toEqual([1, "muster: no instance of api matches; nothing to drain\n"]);
    expect((await client.status({})).drained).toBe(0);
  });
});
