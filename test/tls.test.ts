import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher } from "../src/client/watcher.js";
import { callError } from "./support/call-error.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { tlsFiles, tlsPem } from "./support/tls-fixtures.js";

const { ca, cert, key } = tlsPem;
const exec = promisify(execFile);

const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });

describe("a registry serving TLS", () => {
  it("serves gRPC, Connect, gRPC-Web, grpc-js and buf curl on one https port", async () => {
    const server = await TestRegistry.start({ tls: { cert, key } });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const client = createRegistryClient({ baseUrl: server.url, ca });
    const watcher = new RegistryWatcher(client, { service: "api" });
    const updates = watcher[Symbol.asyncIterator]();
    expect((await updates.next()).value).toMatchObject({ snapshot: true, events: [] });

    await client.register({ instance: instance("grpc") });
    await createRegistryClient({ baseUrl: server.url, ca, protocol: "connect", httpVersion: "1.1" }).register({ instance: instance("connect") });
    await createRegistryClient({ baseUrl: server.url, ca, protocol: "grpc-web" }).register({ instance: instance("grpc-web") });
    const grpcJs = grpcJsClient(server.url, grpc.credentials.createSsl(ca));
    await grpcJs.unary("Register", { instance: { service: "api", id: "grpc-js", address: "10.0.0.1:80" } });
    grpcJs.close();
    const curled = await exec("node_modules/.bin/buf", ["curl", "--cacert", tlsFiles.ca, "--protocol", "grpc", "--schema", "proto", "-d", '{"service":"api"}', `${server.url}/muster.v1.RegistryService/Discover`]);
    expect((JSON.parse(curled.stdout) as { instances: { id: string }[] }).instances.map((found) => found.id).sort()).toEqual(["connect", "grpc", "grpc-js", "grpc-web"]);

    const seen: string[] = [];
    while (seen.length < 4) {
      const next = await updates.next();
      if (next.done === true) break;
      seen.push(...next.value.events.map((event) => event.instance?.id ?? ""));
    }
    expect(seen).toEqual(["grpc", "connect", "grpc-web", "grpc-js"]);
    watcher.close();
  });

  it("fails clients that do not trust its certificate, or that speak cleartext, with UNAVAILABLE and the reason, and keeps serving", async () => {
    const server = await TestRegistry.start({ tls: { cert, key } });
    const untrusting = await callError(createRegistryClient({ baseUrl: server.url }).status({}));
    // Node's own words follow; Node 24 adds a hint about --use-system-ca.
    expect(untrusting.code).toBe(Code.Unavailable);
    expect(untrusting.rawMessage).toMatch(/^cannot connect to the registry: unable to verify the first certificate/);
    const cleartext = await callError(createRegistryClient({ baseUrl: server.url.replace("https:", "http:") }).status({}));
    expect([cleartext.code, cleartext.rawMessage]).toEqual([Code.Unavailable, "the connection closed before the registry answered; if it serves TLS, use https://"]);
    expect((await createRegistryClient({ baseUrl: server.url, ca }).status({})).instances).toBe(0);
  });

  it("tells a TLS client of a cleartext registry to use http://", async () => {
    const server = await TestRegistry.start();
    const error = await callError(createRegistryClient({ baseUrl: server.url.replace("http:", "https:") }).status({}));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toMatch(/^cannot connect to the registry: .*wrong version number/);
  });
});

describe("muster serve --tls-cert --tls-key", () => {
  it("serves https, and the CLI trusts a private CA through NODE_EXTRA_CA_CERTS", async () => {
    const dataDir = await tempDataDir();
    const serving = MusterProcess.serve({ MUSTER_TLS_CERT: tlsFiles.cert }, ["--data-dir", dataDir, "--tls-key", tlsFiles.key]);
    const url = await serving.ready();
    expect(url).toMatch(/^https:/);
    const trusted = await MusterProcess.run(["status", "--registry", url], { NODE_EXTRA_CA_CERTS: tlsFiles.ca });
    expect(trusted.stdout).toContain(`${url} (reachable)`);
    const untrusted = await MusterProcess.run(["status", "--registry", url]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr.trim().split("\n")).toHaveLength(1);
    expect(untrusted.stderr).toMatch(`muster: the registry at ${url} has a certificate this machine does not trust (unable to verify the first certificate`);
    expect(untrusted.stderr.trim()).toMatch(/; if a private CA signed it, run with NODE_EXTRA_CA_CERTS=<that CA's PEM file>$/);
    const cleartext = await MusterProcess.run(["status", "--registry", url.replace("https:", "http:")]);
    expect(cleartext.stderr).toContain("the connection closed before the registry answered; if it serves TLS, use https://");
    await serving.kill("SIGTERM");
  });

  it("explains a missing, unusable or mismatched certificate or key in one line, before touching the data directory", async () => {
    const folder = await tempDataDir();
    const dataDir = join(folder, "data");
    const otherKey = join(folder, "other-key.pem");
    await writeFile(otherKey, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }));
    const serve = (...args: string[]) => MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, ...args]);
    const cases: [string[], string][] = [
      [["--tls-cert", tlsFiles.cert], "muster: TLS needs both a certificate and its key: --tls-cert (MUSTER_TLS_CERT) and --tls-key (MUSTER_TLS_KEY) go together"],
      [["--tls-cert", join(folder, "missing.pem"), "--tls-key", tlsFiles.key], `muster: cannot read the TLS certificate (--tls-cert, MUSTER_TLS_CERT) ${join(folder, "missing.pem")}: no such file or directory`],
      [["--tls-cert", tlsFiles.cert, "--tls-key", otherKey], "muster: cannot serve TLS: the private key is not the certificate's; give the key the certificate was issued for"],
      [["--tls-cert", tlsFiles.key, "--tls-key", tlsFiles.key], "muster: cannot serve TLS: the certificate or the key is not usable PEM ("],
    ];
    for (const [args, expected] of cases) {
      const exit = await serve(...args);
      expect(exit.code).toBe(1);
      expect(exit.stderr.trim().split("\n")).toHaveLength(1);
      expect(exit.stderr.trim().startsWith(expected), exit.stderr).toBe(true);
    }
    expect(existsSync(dataDir)).toBe(false);
  });
});
