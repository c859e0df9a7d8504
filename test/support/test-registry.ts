import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { onTestFinished } from "vitest";
import { startRegistryServer, type RegistryServerOptions, type RunningRegistry } from "../../src/server/registry-server.js";
import { RegistryService } from "../../gen/muster/v1/registry_pb.js";
import { moreTransports, transports, type RegistryClient } from "./clients.js";

export async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "muster-test-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The real server, in this process, on a free port, with LevelDB in a
 * fresh temporary directory. Closed (and the directory removed) when the
 * test finishes.
 */
export class TestRegistry {
  private constructor(
    private running: RunningRegistry,
    readonly dataDir: string,
    private readonly options: Omit<RegistryServerOptions, "dataDir">,
  ) {}

  static async start(options: Omit<RegistryServerOptions, "dataDir"> & { dataDir?: string } = {}): Promise<TestRegistry> {
    const dataDir = options.dataDir ?? (await tempDataDir());
    const running = await startRegistryServer({ ...options, port: options.port ?? 0, dataDir });
    const registry = new TestRegistry(running, dataDir, options);
    onTestFinished(() => registry.stop());
    return registry;
  }

  get url(): string {
    return this.running.url;
  }

  get dnsPort(): number | undefined {
    return this.running.dnsPort;
  }

  get firstAnswered(): Promise<void> {
    return this.running.firstAnswered;
  }

  get registry(): RunningRegistry["registry"] {
    return this.running.registry;
  }

  /** A Connect-ES client over the named transport (default gRPC). */
  client(transport = "gRPC over HTTP/2"): RegistryClient {
    const make = transports[transport] ?? moreTransports[transport];
    if (make === undefined) throw new Error(`no transport ${transport}`);
    return createClient(RegistryService, make(this.url));
  }

  stop(): Promise<void> {
    return this.running.close();
  }

  reload(update: Parameters<RunningRegistry["reload"]>[0]): ReturnType<RunningRegistry["reload"]> {
    return this.running.reload(update);
  }

  /** Closes cleanly and opens the same data directory again, on a new port. */
  async restart(): Promise<void> {
    await this.running.close();
    this.running = await startRegistryServer({ ...this.options, port: 0, dataDir: this.dataDir });
  }
}
