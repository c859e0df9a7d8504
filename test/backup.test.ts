import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it, onTestFinished } from "vitest";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { grpcClient } from "./support/clients.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";
import { summarize } from "./support/watch-view.js";

describe("muster backup and restore", () => {
  it("round-trips every instance and the revision through a file, taken while serving", async () => {
    const folder = await tempDataDir();
    const source = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "source") });
    onTestFinished(() => source.kill("SIGTERM").then(() => undefined));
    const url = await source.ready();
    const client = grpcClient(url);
    const ttl = durationFromMs(600_000);
    for (let i = 0; i < 25; i++) {
      await client.register({ instance: { service: `svc-${i % 3}`, id: `i${i}`, address: `10.0.0.${i + 1}:80`, version: "1.2.3", tags: ["t"], labels: { n: String(i) }, ttl } });
    }
    await client.heartbeat({ service: "svc-0", id: "i0", status: HealthStatus.UNHEALTHY });
    await client.heartbeat({ service: "svc-1", id: "i1", status: HealthStatus.DEGRADED });
    await client.deregister({ service: "svc-2", id: "i2" });
    await client.drain({ service: "svc-0", id: "i3", reason: "kept through a backup" });
    const before = await client.discover({ includeUnhealthy: true, includeDrained: true });

    const file = join(folder, "backup.json");
    const writes = Promise.all(Array.from({ length: 20 }, (_, i) => client.register({ instance: { service: "late", id: `l${i}`, address: "10.9.9.9:80", ttl } })));
    const backup = await MusterProcess.run(["backup", file], { MUSTER_REGISTRY: url });
    await writes;
    expect(backup.code, backup.stderr).toBe(0);
    const saved = JSON.parse(await readFile(file, "utf8")) as { revision: string; instances: { service: string }[] };
    expect(backup.stdout).toBe(`backed up ${saved.instances.length} instances at revision ${saved.revision} to ${file}\n`);
    expect(saved.instances.filter((i) => i.service !== "late")).toHaveLength(24);
    expect(saved.instances.filter((i) => i.service === "late")).toHaveLength(Number(saved.revision) - Number(before.revision));
    await source.kill("SIGTERM");

    const target = join(folder, "target");
    const restore = await MusterProcess.run(["restore", file, "--data-dir", target]);
    expect(restore.stdout).toContain(`restored ${saved.instances.length} instances at revision ${saved.revision} into ${target}`);
    const restored = MusterProcess.serve({ MUSTER_DATA_DIR: target });
    try {
      const again = grpcClient(await restored.ready());
      const after = await again.discover({ includeUnhealthy: true, includeDrained: true });
      expect(after.revision).toBe(BigInt(saved.revision));
      const original = before.instances.map(summarize);
      expect(after.instances.filter((i) => i.service !== "late").map(summarize)).toEqual(original);
      const next = await again.register({ instance: { service: "after", address: "10.0.0.1:80" } });
      expect(next.revision).toBe(BigInt(saved.revision) + 1n);
    } finally {
      await restored.kill("SIGTERM");
    }

    const refused = await MusterProcess.run(["restore", file, "--data-dir", target]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^muster: data directory .+ already holds a registry \(revision \d+\); restore into an empty directory\n$/);
  });

  it("refuses, in one line, a file that is not a backup or holds an invalid instance", async () => {
    const folder = await tempDataDir();
    const notBackup = join(folder, "not.json");
    await writeFile(notBackup, '{"hello": 1}');
    const wrong = await MusterProcess.run(["restore", notBackup, "--data-dir", join(folder, "a")]);
    expect(wrong.stderr).toBe(`muster: ${notBackup} is not a muster backup (version 1); make one with 'muster backup FILE'\n`);
    const missing = await MusterProcess.run(["restore", join(folder, "missing.json"), "--data-dir", join(folder, "a")]);
    expect(missing.stderr).toBe(`muster: cannot read backup file ${join(folder, "missing.json")}: no such file or directory\n`);
    await writeFile(join(folder, "torn.json"), '{"format": "muster-backup", "ver');
    const torn = await MusterProcess.run(["restore", join(folder, "torn.json"), "--data-dir", join(folder, "a")]);
    expect(torn.stderr).toBe(`muster: backup file ${join(folder, "torn.json")} is not valid JSON\n`);
    const invalid = join(folder, "invalid.json");
    await writeFile(invalid, JSON.stringify({ format: "muster-backup", version: 1, revision: "3", createdAt: "", instances: [{ service: "ok", id: "1", address: "10.0.0.1:80" }, { service: "Bad", id: "2", address: "x" }] }));
    const rejected = await MusterProcess.run(["restore", invalid, "--data-dir", join(folder, "b")]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toMatch(/^muster: backup file .+ instance 2 is not valid \(instance.service: must be a DNS-1123 label.+\); nothing was restored\n$/);
    const untouched = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "b") });
    try {
      expect((await grpcClient(await untouched.ready()).discover({ includeUnhealthy: true })).revision).toBe(0n);
    } finally {
      await untouched.kill("SIGTERM");
    }
  });
});
