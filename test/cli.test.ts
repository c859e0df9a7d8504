import { spawn } from "node:child_process";
import { once } from "node:events";
import { symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { HealthStatus } from "../gen/muster/v1/registry_pb.js";
import { grpcClient } from "./support/clients.js";
import { musterBin, MusterProcess, type Exit } from "./support/registry-process.js";
import { freePort, residentMiB } from "./support/machine.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

/** One line on stderr, non-zero exit, no stack trace. */
function expectOneLineError(exit: Exit, text: string): void {
  expect(exit.code, exit.stderr).not.toBe(0);
  expect(exit.code).not.toBeNull();
  const lines = exit.stderr.trim().split("\n");
  expect(lines, exit.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^muster: /);
  expect(lines[0]).toContain(text);
  expect(exit.stderr).not.toMatch(/\n\s+at /);
}

async function serving(): Promise<{ url: string; env: Record<string, string>; server: MusterProcess }> {
  const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() });
  const url = await server.ready();
  return { url, env: { MUSTER_REGISTRY: url }, server };
}


describe("muster CLI against a served registry", () => {
  it("ls, services and status show what the registry holds", async () => {
    const { url, env, server } = await serving();
    try {
      const client = grpcClient(url);
      await client.register({ instance: { service: "payments", id: "p-1", address: "10.0.0.1:80", version: "1.4.2", tags: ["grpc"], labels: { env: "prod" } } });
      await client.register({ instance: { service: "payments", id: "p-2", address: "10.0.0.2:80", version: "2.0.0" } });
      await client.register({ instance: { service: "search", id: "s-1", address: "10.0.0.3:80" } });
      await client.heartbeat({ service: "search", id: "s-1", status: HealthStatus.UNHEALTHY });

      const ls = await MusterProcess.run(["ls"], env);
      expect(ls.code).toBe(0);
      const [header, ...rows] = ls.stdout.trim().split("\n");
      expect(header?.split(/\s{2,}/)).toEqual(["SERVICE", "ID", "ADDRESS", "VERSION", "HEALTH", "LAST HEARTBEAT", "TAGS"]);
      expect(rows.map((row) => row.split(/\s{2,}/).slice(0, 5))).toEqual([
        ["payments", "p-1", "10.0.0.1:80", "1.4.2", "HEALTHY"],
        ["payments", "p-2", "10.0.0.2:80", "2.0.0", "HEALTHY"],
      ]);
      expect(rows[0]).toMatch(/\d+s ago\s+grpc$/);

      const filtered = await MusterProcess.run(["ls", "payments", "--version", ">=1.2 <2", "--selector", "env=prod", "-o", "json"], env);
      expect((JSON.parse(filtered.stdout) as { id: string }[]).map((i) => i.id)).toEqual(["p-1"]);
      const all = await MusterProcess.run(["ls", "--all", "-o", "wide"], env);
      expect(all.stdout).toMatch(/search\s+s-1\s+10\.0\.0\.3:80\s+-\s+UNHEALTHY/);
      expect(all.stdout.split("\n")[0]).toContain("REVISION");

      const services = await MusterProcess.run(["services"], env);
      expect(services.stdout.trim().split("\n").map((line) => line.split(/\s+/))).toEqual([
        ["SERVICE", "INSTANCES", "HEALTHY", "DEGRADED", "UNHEALTHY", "DRAINED"],
        ["payments", "2", "2", "0", "0", "0"],
        ["search", "1", "0", "0", "1", "0"],
      ]);

      const status = await MusterProcess.run(["status", "-o", "json"], env);
      const statusJson = JSON.parse(status.stdout) as { residentBytes: string };
      expect(statusJson).toMatchObject({ revision: "4", services: 2, instances: 3, healthy: 2, unhealthy: 1, version: "0.1.0" });
      // The registry's own reading of its memory, against the kernel's.
      expect(Number(statusJson.residentBytes) / 1024 / 1024).toBeGreaterThan(residentMiB(server.pid) * 0.8);
      expect(Number(statusJson.residentBytes) / 1024 / 1024).toBeLessThan(residentMiB(server.pid) * 1.2);
      const text = await MusterProcess.run(["status"], env);
      expect(text.stdout).toMatch(/^memory\s+\d+\.\d MiB resident$/m);
      expect(text.stdout).toMatch(/^registry\s+http:\/\/127\.0\.0\.1:\d+ \(reachable\)$/m);
      expect(text.stdout).toMatch(/^data\s+\/.+ \(\d+(\.\d)? (B|KiB|MiB)\)$/m);
      expect(text.stdout).toMatch(/^uptime\s+\d+s$/m);
      expect(text.stdout).toMatch(/^expiry\s+normal \(0 of 3 instances silent\)$/m);
      expect(text.stdout).toMatch(/^writes\s+ok \(\d+ synced commits?, 4 changes\)$/m);
      const release = await MusterProcess.run(["release-expiry-hold"], env);
      expect(release.stdout.trim()).toBe("nothing to release: expiry was not held");

      const coloured = await MusterProcess.run(["ls"], { ...env, NO_COLOR: "", FORCE_COLOR: "1" });
      expect(coloured.stdout).toContain("\x1b[32mHEALTHY");
    } finally {
      await server.kill("SIGTERM");
    }
  });

  it("register heartbeats past its ttl while watch prints live events, and Ctrl-C deregisters", async () => {
    const { env, server } = await serving();
    try {
      const watch = MusterProcess.spawn(["watch", "--all"], env);
      const agent = MusterProcess.spawn(["register", "jobs", "--address", "10.0.0.9:7000", "--id", "w-1", "--ttl", "1s", "--deregister-after", "1s", "--label", "env=ci", "--tag", "batch"], env);
      await agent.line((line) => line.startsWith("registered jobs/w-1 (10.0.0.9:7000) at revision 1"));
      const silent = MusterProcess.spawn(["register", "jobs", "--address", "10.0.0.10:7000", "--id", "w-2", "--ttl", "1s", "--deregister-after", "1s"], env);
      await silent.line((line) => line.startsWith("registered jobs/w-2"));
      await silent.kill("SIGKILL");

      const expired = await watch.line((line) => line.includes("EVENT_TYPE_EXPIRED"), 10_000);
      expect(JSON.parse(expired)).toMatchObject({ instance: { id: "w-2" }, removed: true });
      const events = watch.lines().map((line) => JSON.parse(line) as { type: string; instance: { id: string; health: string }; revision: string });
      const w2 = events.filter((event) => event.instance.id === "w-2").map((event) => [event.type, event.instance.health]);
      expect(w2).toEqual([
        ["EVENT_TYPE_REGISTERED", "HEALTH_STATUS_HEALTHY"],
        ["EVENT_TYPE_HEALTH_CHANGED", "HEALTH_STATUS_UNHEALTHY"],
        ["EVENT_TYPE_EXPIRED", "HEALTH_STATUS_UNHEALTHY"],
      ]);
      const revisions = events.map((event) => Number(event.revision));
      expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
      expect(events.some((event) => event.instance.id === "w-1" && event.type !== "EVENT_TYPE_REGISTERED")).toBe(false);

      const listed = await MusterProcess.run(["ls", "jobs", "-o", "json"], env);
      expect(JSON.parse(listed.stdout)).toMatchObject([{ id: "w-1", health: "HEALTH_STATUS_HEALTHY", labels: { env: "ci" }, tags: ["batch"] }]);

      const left = await agent.kill("SIGINT");
      expect(left.code).toBe(0);
      expect(left.stdout).toContain("deregistered jobs/w-1");
      const deregistered = await watch.line((line) => line.includes("EVENT_TYPE_DEREGISTERED"));
      expect(JSON.parse(deregistered)).toMatchObject({ instance: { id: "w-1" } });
      expect((await watch.kill("SIGINT")).code).toBe(0);
    } finally {
      await server.kill("SIGTERM");
    }
  });

  it("watch resumes by itself when the registry restarts, and --since replays history", async () => {
    const dataDir = await tempDataDir();
    const port = String(await freePort());
    const first = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir, MUSTER_ADDR: `127.0.0.1:${port}` });
    const url = await first.ready();
    const env = { MUSTER_REGISTRY: url };
    const client = grpcClient(url);
    await client.register({ instance: { service: "a", id: "1", address: "10.0.0.1:80", ttl: durationFromMs(60_000) } });
    const watch = MusterProcess.spawn(["watch", "-o", "json"], env);
    await watch.line((line) => line.includes('"id":"1"'));
    await first.kill("SIGKILL");
    const second = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir, MUSTER_ADDR: `127.0.0.1:${port}` });
    try {
      await second.ready();
      await grpcClient(url).register({ instance: { service: "a", id: "2", address: "10.0.0.2:80", ttl: durationFromMs(60_000) } });
      const resumed = JSON.parse(await watch.line((line) => line.includes('"id":"2"'), 15_000)) as { revision: string; snapshot: boolean };
      expect(resumed).toMatchObject({ revision: "2", snapshot: false });
      expect(watch.lines().filter((line) => line.includes('"id":"1"'))).toHaveLength(1);
      expect((await watch.kill("SIGINT")).code).toBe(0);

      const replay = MusterProcess.spawn(["watch", "--since", "1", "-o", "json"], env);
      const replayed = JSON.parse(await replay.line((line) => line.includes('"id":"2"'))) as { type: string };
      expect(replayed.type).toBe("EVENT_TYPE_REGISTERED");
      expect(replay.lines()).toHaveLength(1);
      await replay.kill("SIGINT");
    } finally {
      await second.kill("SIGTERM");
    }
  });

  it("watch --since says so when the registry cannot replay from there, and starts from its current state", async () => {
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir(), MUSTER_HISTORY_LIMIT: "2" });
    try {
      const url = await server.ready();
      const client = grpcClient(url);
      for (const id of ["1", "2", "3", "4"]) await client.register({ instance: { service: "a", id, address: "10.0.0.1:80", ttl: durationFromMs(60_000) } });
      const env = { MUSTER_REGISTRY: url };

      const tooOld = MusterProcess.spawn(["watch", "--since", "1", "-o", "json"], env);
      await tooOld.line((line) => line.includes('"id":"4"'));
      const old = await tooOld.kill("SIGINT");
      expect(old.stdout.trim().split("\n").map((line) => JSON.parse(line) as { snapshot: boolean; instance: { id: string } }).map((event) => [event.instance.id, event.snapshot])).toEqual([
        ["1", true],
        ["2", true],
        ["3", true],
        ["4", true],
      ]);
      expect(old.stderr).toBe("muster: the changes after revision 1 cannot be replayed (the registry no longer keeps them, counts in another history, or has not reached that revision): starting from its current state at revision 4\n");

      const held = MusterProcess.spawn(["watch", "--since", "3", "-o", "json"], env);
      await held.line((line) => line.includes('"id":"4"'));
      await client.deregister({ service: "a", id: "1" });
      await held.line((line) => line.includes("EVENT_TYPE_DEREGISTERED"));
      const replayed = await held.kill("SIGINT");
      expect(replayed.stdout.trim().split("\n")).toHaveLength(2);
      expect(replayed.stderr).toBe("");

      const onTerminal = MusterProcess.spawn(["watch", "b", "-o", "text"], { ...env, NO_COLOR: "1" });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const quiet = await onTerminal.kill("SIGINT");
      expect([quiet.stdout, quiet.stderr]).toEqual(["", "0 instances now (revision 5); watching for changes\n"]);
    } finally {
      await server.kill("SIGTERM");
    }
  });

  it("watch --heartbeats prints each heartbeat that changes nothing, once a second, and only for the watched service", async () => {
    const server = MusterProcess.serve({ MUSTER_DATA_DIR: await tempDataDir() });
    try {
      const url = await server.ready();
      const client = grpcClient(url);
      for (const service of ["a", "b"]) await client.register({ instance: { service, id: "1", address: "10.0.0.1:80", ttl: durationFromMs(60_000) } });
      const watch = MusterProcess.spawn(["watch", "a", "--heartbeats", "-o", "json"], { MUSTER_REGISTRY: url });
      await watch.line((line) => line.includes('"snapshot":true'));
      await client.heartbeat({ service: "b", id: "1" });
      await client.heartbeat({ service: "a", id: "1" });
      const [shown] = (await client.discover({ service: "a" })).instances;
      const { at, ...line } = JSON.parse(await watch.line((text) => text.includes('"heartbeat":true'))) as { service: string; id: string; at: string };
      expect(line).toEqual({ service: "a", id: "1", heartbeat: true });
      expect(Date.parse(at)).toBe(shown?.lastHeartbeatAt === undefined ? undefined : timestampMs(shown.lastHeartbeatAt));
      expect((await watch.kill("SIGINT")).code).toBe(0);
      expect(watch.lines().filter((text) => text.includes('"heartbeat":true'))).toHaveLength(1);
    } finally {
      await server.kill("SIGTERM");
    }
  });

  it("takes settings from flags over MUSTER_* over the config file over defaults", async () => {
    const folder = await tempDataDir();
    const config = join(folder, "muster.json");
    await writeFile(config, JSON.stringify({ dataDir: "from-config", logLevel: "warn", addr: "127.0.0.1:0" }));
    const dataDirOf = async (args: string[], env: Record<string, string>) => {
      const server = MusterProcess.spawn(["serve", "--config", config, "--log-level", "info", ...args], env);
      const line = await server.line((text) => text.includes("muster is serving"));
      await server.kill("SIGTERM");
      return (JSON.parse(line) as { dataDir: string }).dataDir;
    };
    expect(await dataDirOf([], {})).toBe(join(folder, "from-config"));
    expect(await dataDirOf([], { MUSTER_DATA_DIR: join(folder, "from-env") })).toBe(join(folder, "from-env"));
    expect(await dataDirOf(["--data-dir", join(folder, "from-flag")], { MUSTER_DATA_DIR: join(folder, "from-env") })).toBe(join(folder, "from-flag"));
    const quiet = MusterProcess.spawn(["serve", "--config", config]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const exit = await quiet.kill("SIGTERM");
    expect(exit.code).toBe(0);
    expect(exit.stdout).toBe("");
  });
});

describe("muster CLI errors", () => {
  it("explains a busy port, a locked data directory, a bad address, and a file, a link to nothing or /proc for a data directory, in one line each", async () => {
    const holder = await TestRegistry.start();
    const port = new URL(holder.url).port;
    expectOneLineError(await MusterProcess.run(["serve", "--addr", `127.0.0.1:${port}`, "--data-dir", await tempDataDir()]), "address is already in use");
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", holder.dataDir]), "is in use by another muster process");
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "nowhere"]), "must be host:port");
    // 192.0.2.1 is TEST-NET-1 (RFC 5737), no machine's own address; .invalid never resolves (RFC 2606).
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "192.0.2.1:6878", "--data-dir", await tempDataDir()]), "cannot listen on 192.0.2.1:6878: this machine has no such address");
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "registry.invalid:6878", "--data-dir", await tempDataDir()]), "cannot listen on registry.invalid:6878: ");
    const aFile = join(await tempDataDir(), "a-file");
    await writeFile(aFile, "not a directory");
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", aFile]), `cannot open data directory ${aFile}: a file has that name`);
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(aFile, "inside")]), "a part of the path is a file, not a directory");
    expectOneLineError(await MusterProcess.run(["repair", "--data-dir", aFile]), `data directory ${aFile} is not a directory; there is nothing to repair`);
    // Under /proc, mkdir answers ENOENT though the parent exists, and Node's recursive mkdir retries that forever.
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", "/proc/muster-data"]), "cannot open data directory /proc/muster-data: this file system does not let a directory be made there");
    const notMounted = join(await tempDataDir(), "not-mounted");
    const link = join(await tempDataDir(), "disk");
    await symlink(notMounted, link);
    for (const dataDir of [link, join(link, "muster")]) {
      expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir]), `cannot open data directory ${dataDir}: ${link} is a symbolic link to ${notMounted}, which does not exist; create or mount it first`);
    }
    const debug = await MusterProcess.run(["serve", "--addr", `127.0.0.1:${port}`, "--data-dir", await tempDataDir(), "--log-level", "debug"]);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it("explains an unreadable, malformed or unknown config file in one line each", async () => {
    const folder = await tempDataDir();
    const write = async (name: string, text: string) => {
      await writeFile(join(folder, name), text);
      return join(folder, name);
    };
    expectOneLineError(await MusterProcess.run(["serve", "--config", join(folder, "missing.json")]), "missing.json: no such file or directory; check the path");
    expectOneLineError(await MusterProcess.run(["serve", "--config", await write("bad.json", "{addr:")]), "is not valid JSON");
    expectOneLineError(await MusterProcess.run(["serve", "--config", await write("odd.json", '{"port": 1}')]), 'unknown setting "port"');
    expectOneLineError(await MusterProcess.run(["serve", "--log-level", "loud", "--addr", "127.0.0.1:0"]), "log level must be one of");
    expectOneLineError(await MusterProcess.run(["serve", "--config", await write("release.json", '{"idleMemoryReleaseSeconds": -1}')]), "idle memory release must be a whole number of seconds, 0 to turn it off");
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0"], { MUSTER_IDLE_MEMORY_RELEASE_SECONDS: "soon" }), '(got "soon")');
    expectOneLineError(await MusterProcess.run(["serve", "--config", await write("young.json", '{"youngGenerationMiB": 1.5}')]), "young generation must be a whole number of MiB, 0 to leave its size to V8");
    expectOneLineError(await MusterProcess.run(["serve", "--addr", "127.0.0.1:0"], { MUSTER_YOUNG_GENERATION_MIB: "-16" }), '(got "-16")');
  });

  it("explains an unreachable registry and invalid flag values in one line each", async () => {
    const port = await freePort();
    const nowhere = { MUSTER_REGISTRY: `http://127.0.0.1:${port}` };
    for (const args of [["ls"], ["services"], ["status"], ["deregister", "a", "b"]]) {
      expectOneLineError(await MusterProcess.run(args, nowhere), `cannot reach the registry at http://127.0.0.1:${port} (connection refused)`);
    }
    const waiting = MusterProcess.spawn(["watch"], nowhere);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const stopped = await waiting.kill("SIGINT");
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toMatch(/^muster: cannot reach the registry at .+ \(connection refused\).+; resuming from revision 0 in \d+\.\ds$/m);
    expectOneLineError(await MusterProcess.run(["register", "a", "--address", "10.0.0.1:1", "--ttl", "soon"]), "'--ttl <duration>' argument 'soon' is invalid");
    expectOneLineError(await MusterProcess.run(["register", "a", "--address", "10.0.0.1:1", "--label", "novalue"]), "must be key=value");
    expectOneLineError(await MusterProcess.run(["register", "a", "--address", "10.0.0.1:1", "--weight", "10001"]), "'--weight <n>' argument '10001' is invalid. must be a whole number from 0 to 10000");
    expectOneLineError(await MusterProcess.run(["register", "a"]), "required option '--address <host:port>' not specified");
    expectOneLineError(await MusterProcess.run(["watch", "--since", "yesterday"]), "must be a whole number");
    expectOneLineError(await MusterProcess.run(["ls", "-o", "yaml"]), "must be one of table, wide, json");
    expectOneLineError(await MusterProcess.run(["ls", "--bogus"]), "unknown option '--bogus'");
    expectOneLineError(await MusterProcess.run(["--registry", "http://127.0.0.1:1", "ls"]), "unknown option '--registry'; options go after the command, as in `muster ls --registry URL`");
    expectOneLineError(await MusterProcess.run(["-v"]), "unknown option '-v'; the version is `muster --version` (or -V)");
    expectOneLineError(await MusterProcess.run(["frobnicate"]), "unknown command 'frobnicate'");
  });

  it("explains what the registry rejects in one line", async () => {
    const { env, server } = await serving();
    try {
      expectOneLineError(await MusterProcess.run(["register", "Bad_Name", "--address", "10.0.0.1:80"], env), "the registry rejected the instance: instance.service: must be a DNS-1123 label");
      expectOneLineError(await MusterProcess.run(["deregister", "payments", "ghost"], env), "instance payments/ghost is not registered (unknown or expired): there is nothing to deregister");
      expectOneLineError(await MusterProcess.run(["ls", "--selector", "env in (a"], env), "selector: must be a label selector");
    } finally {
      await server.kill("SIGTERM");
    }
  });

  it("ends quietly when its reader stops early, as `muster ls | head -1` does", async () => {
    const { url, env, server } = await serving();
    try {
      await grpcClient(url).register({ instance: { service: "payments", address: "10.0.0.1:80" } });
      for (const args of [["ls"], ["--help"]]) {
        const child = spawn(process.execPath, [musterBin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        // Closed before the child has even loaded, so its first write meets a reader that is gone.
        child.stdout.destroy();
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        const [code] = (await once(child, "exit")) as [number | null];
        expect({ args, code, stderr }).toEqual({ args, code: 0, stderr: "" });
      }
    } finally {
      await server.kill("SIGTERM");
    }
  });

  it("shows usage with an example for every command", async () => {
    for (const command of [[], ["serve"], ["ls"], ["services"], ["watch"], ["register"], ["deregister"], ["status"], ["release-expiry-hold"], ["backup"], ["restore"], ["repair"]]) {
      const help = await MusterProcess.run([...command, "--help"]);
      expect(help.code, command.join(" ")).toBe(0);
      expect(help.stdout).toMatch(/^Usage: muster/);
      expect(help.stdout).toMatch(/Examples:\n\s+\$ muster /);
    }
  });
});
