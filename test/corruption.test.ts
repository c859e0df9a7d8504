import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Level } from "level";
import { describe, expect, it } from "vitest";
import { grpcClient } from "./support/clients.js";
import { MusterProcess, type Exit } from "./support/registry-process.js";
import { tempDataDir } from "./support/test-registry.js";

const registered = 300;

/** A data directory with `registered` instances, reopened once so LevelDB has written table files. */
async function populatedDataDir(): Promise<string> {
  const dataDir = await tempDataDir();
  const server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
  const client = grpcClient(await server.ready());
  const labels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, `value-${i}`]));
  for (let i = 0; i < registered; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => client.register({ instance: { service: "svc", id: `i${i + j}`, address: "10.0.0.1:80", labels, ttl: durationFromMs(3_600_000) } })));
  }
  await server.kill("SIGTERM");
  const reopened = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
  await reopened.ready();
  await reopened.kill("SIGTERM");
  return dataDir;
}

/** Flips 64 bytes in the middle of every file whose name matches. */
async function garble(dataDir: string, name: RegExp): Promise<number> {
  const files = (await readdir(dataDir)).filter((file) => name.test(file));
  for (const file of files) {
    const bytes = await readFile(join(dataDir, file));
    const start = Math.floor(bytes.length / 3);
    for (let k = start; k < Math.min(bytes.length, start + 64); k++) bytes[k] = (bytes[k] ?? 0) ^ 0xff;
    await writeFile(join(dataDir, file), bytes);
  }
  return files.length;
}

function expectRefusal(exit: Exit, dataDir: string): void {
  expect(exit.code).toBe(1);
  const lines = exit.stderr.trim().split("\n");
  expect(lines, exit.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^muster: data directory ${dataDir} is (damaged|inconsistent)`));
  expect(lines[0]).toContain(`run 'muster repair --data-dir ${dataDir}'`);
}

/** Repairs, starts, and returns what the registry then serves, checked against the report. */
async function repairAndServe(dataDir: string): Promise<{ instances: number; revision: bigint }> {
  const repair = await MusterProcess.run(["repair", "--data-dir", dataDir]);
  expect(repair.code, repair.stderr).toBe(0);
  const report = /kept (\d+) instances? and (\d+) events? at revision (\d+); dropped (\d+)/.exec(repair.stdout);
  expect(report, repair.stdout).not.toBeNull();
  const server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
  try {
    const client = grpcClient(await server.ready());
    const found = await client.discover({ includeUnhealthy: true });
    expect(found.instances).toHaveLength(Number(report?.[1]));
    expect(found.revision).toBe(BigInt(report?.[3] ?? -1));
    const next = await client.register({ instance: { service: "after", address: "10.0.0.1:80" } });
    expect(next.revision).toBe(found.revision + 1n);
    return { instances: found.instances.length, revision: found.revision };
  } finally {
    await server.kill("SIGTERM");
  }
}

describe("a damaged data directory", () => {
  it("with a damaged table file: refuses to serve, names the repair, and serves what repair recovered", async () => {
    const dataDir = await populatedDataDir();
    expect(await garble(dataDir, /\.ldb$/)).toBeGreaterThan(0);
    expectRefusal(await MusterProcess.serve({ MUSTER_DATA_DIR: dataDir }).exited, dataDir);
    const recovered = await repairAndServe(dataDir);
    expect(recovered.instances).toBeLessThanOrEqual(registered);
  });

  it("with a damaged MANIFEST: refuses to serve, and repair rebuilds it with every instance", async () => {
    const dataDir = await populatedDataDir();
    expect(await garble(dataDir, /^MANIFEST-/)).toBe(1);
    expectRefusal(await MusterProcess.serve({ MUSTER_DATA_DIR: dataDir }).exited, dataDir);
    expect((await repairAndServe(dataDir)).instances).toBe(registered);
  });

  it("with an entry muster cannot read: refuses to serve, and repair drops just that entry", async () => {
    const dataDir = await populatedDataDir();
    const db = new Level(dataDir);
    await db.put("i:svc/i7", "{not json");
    await db.close();
    expectRefusal(await MusterProcess.serve({ MUSTER_DATA_DIR: dataDir }).exited, dataDir);
    expect((await repairAndServe(dataDir)).instances).toBe(registered - 1);
  });

  it("repair refuses a directory that does not exist or holds no muster data, and creates nothing", async () => {
    const parent = await tempDataDir();
    const mistyped = join(parent, "muster-dta");
    const missing = await MusterProcess.run(["repair", "--data-dir", mistyped]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(`muster: data directory ${mistyped} does not exist; there is nothing to repair`);
    expect(await readdir(parent)).toEqual([]);

    await writeFile(join(parent, "notes.txt"), "not a registry");
    const empty = await MusterProcess.run(["repair", "--data-dir", parent]);
    expect(empty.code).toBe(1);
    expect(empty.stderr.trim()).toBe(`muster: data directory ${parent} holds no muster data; there is nothing to repair`);
    expect(await readdir(parent)).toEqual(["notes.txt"]);
  });

  it("repair refuses the directory of a serving registry, and every acknowledged write survives", async () => {
    const dataDir = await tempDataDir();
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    const register = (client: ReturnType<typeof grpcClient>, id: string) => client.register({ instance: { service: "svc", id, address: "10.0.0.1:80", ttl: durationFromMs(3_600_000) } });
    try {
      const client = grpcClient(await server.ready());
      await register(client, "before");
      const repair = await MusterProcess.run(["repair", "--data-dir", dataDir]);
      expect(repair.code).toBe(1);
      expect(repair.stderr).toBe(`muster: data directory ${dataDir} is in use by another muster process; stop that process or choose another data directory (MUSTER_DATA_DIR)\n`);
      // LevelDB's repair moves the files it sets aside into lost/.
      expect(await readdir(dataDir)).not.toContain("lost");
      await register(client, "after");
    } finally {
      await server.kill("SIGTERM");
    }
    const restarted = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    try {
      const found = await grpcClient(await restarted.ready()).discover({ includeUnhealthy: true });
      expect(found.instances.map((instance) => instance.id)).toEqual(["after", "before"]);
    } finally {
      await restarted.kill("SIGTERM");
    }
  });
});
