import { execFileSync } from "node:child_process";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { grpcClient } from "./support/clients.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";

/*
 * A full disk, made with a file size limit (`prlimit --fsize`, util-linux):
 * LevelDB's write-ahead log cannot grow past it, so a write fails part way,
 * as on a full disk, and raising the limit frees the "disk" again.
 */
const fileSizeLimit = 1_000_000;
const labels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(50)]));
const longTtl = durationFromMs(3_600_000);

describe("a full disk", () => {
  it("fails the writes it cannot store with UNAVAILABLE, says so in Status, changes nothing, and loses no write acknowledged once there is room again", async () => {
    const dataDir = await tempDataDir();
    const limited = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir }, [], ["prlimit", `--fsize=${fileSizeLimit}:unlimited`]);
    const url = await limited.ready();
    const client = grpcClient(url);
    const acknowledged = new Map<string, string>();
    await client.register({ instance: { service: "fill", id: "kept", address: "10.0.0.1:80", labels: { version: "old" }, ttl: longTtl } });
    acknowledged.set("kept", "old");
    let failure: ConnectError | undefined;
    for (let batch = 0; failure === undefined && batch < 100; batch++) {
      // Each group also updates an instance the registry holds, so a failed group has a committed record to keep.
      const writes = [{ id: "kept", version: `v${batch}` }, ...Array.from({ length: 49 }, (_, i) => ({ id: `b${batch}-${i}`, version: "1" }))];
      const results = await Promise.allSettled(writes.map(({ id, version }) => client.register({ instance: { service: "fill", id, address: "10.0.0.1:80", labels: { ...labels, version }, ttl: longTtl } })));
      results.forEach((result, index) => {
        const write = writes[index];
        if (result.status === "fulfilled" && write !== undefined) acknowledged.set(write.id, write.version);
        else if (result.status === "rejected") failure ??= ConnectError.from(result.reason);
      });
    }
    expect(failure?.code).toBe(Code.Unavailable);
    expect(failure?.rawMessage).toMatch(/^the registry could not write to its data directory: IO error: .+: File too large$/);
    const versionsNow = (found: Awaited<ReturnType<typeof client.discover>>) => new Map(found.instances.map((instance) => [instance.id, instance.labels["version"] ?? ""]));
    expect(versionsNow(await client.discover({ service: "fill" }))).toEqual(acknowledged);
    const failing = await client.status({});
    expect(failing.writeFailure).toMatch(/: File too large$/);
    expect(failing.writeFailingSince).toBeDefined();
    const statusText = await MusterProcess.run(["status", "--registry", url]);
    expect(statusText.stdout).toMatch(/^writes\s+FAILING since \d{4}-\d\d-\d\dT.+Z: IO error: .+: File too large; changes are refused until the data directory takes writes again \(\d+ synced commits?, \d+ changes?\)$/m);

    execFileSync("prlimit", ["--pid", String(limited.pid), "--fsize=unlimited:unlimited"]);
    await client.register({ instance: { service: "fill", id: "after", address: "10.0.0.1:80", labels: { version: "after" }, ttl: longTtl } });
    acknowledged.set("after", "after");
    const recovered = await client.status({});
    expect([recovered.writeFailure, recovered.writeFailingSince]).toEqual(["", undefined]);
    const { revision } = await client.discover({ service: "fill" });
    const stopped = await limited.kill("SIGTERM");
    // One line when the failures begin and one when they end, not a line per failed commit.
    const logged = stopped.stdout.split("\n").filter((line) => /writes (failing|recovered)|write failed/.test(line));
    expect(logged.map((line) => (JSON.parse(line) as { msg: string }).msg.split(":")[0])).toEqual(["writes failing", "writes recovered"]);

    const restarted = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    try {
      const found = await grpcClient(await restarted.ready()).discover({ service: "fill" });
      expect(versionsNow(found)).toEqual(acknowledged);
      expect(found.revision).toBe(revision);
    } finally {
      await restarted.kill("SIGTERM");
    }
  });
});
