import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { RegistryAgent } from "../src/client/agent.js";
import { createRegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher } from "../src/client/watcher.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { RegistryService } from "../gen/muster/v1/registry_pb.js";
import { transports } from "./support/clients.js";
import { callError } from "./support/call-error.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";

const writeToken = "w-3f9c2a7d41b8e6f0";
const readToken = "r-8a1b77c0e9d24f15";
const tokenFile = `# role token\nwrite ${writeToken}\n\nread ${readToken}\n`;
const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });
const exec = promisify(execFile);

describe("a registry that requires tokens", () => {
  it("refuses calls without a known token on every protocol, and stores nothing", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens(tokenFile) });
    for (const [name, make] of Object.entries(transports)) {
      const anonymous = createClient(RegistryService, make(server.url));
      const missing = await callError(anonymous.register({ instance: instance(name) }));
      expect([name, missing.code, missing.rawMessage]).toEqual([name, Code.Unauthenticated, 'a token is required: send the header "authorization: Bearer <token>" (the SDK\'s token option, MUSTER_TOKEN for the CLI)']);
      const wrong = await callError(anonymous.discover({ service: "api" }, { headers: { authorization: `Bearer ${writeToken}x` } }));
      expect([name, wrong.code, wrong.rawMessage.startsWith("the token is not one of the registry's")]).toEqual([name, Code.Unauthenticated, true]);
    }
    const grpcJs = grpcJsClient(server.url);
    await expect(grpcJs.unary("Register", { instance: { service: "api", id: "grpc-js", address: "10.0.0.1:80" } })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    grpcJs.close();
    expect((await createRegistryClient({ baseUrl: server.url, token: readToken }).discover({ service: "api" })).instances).toEqual([]);
    expect((await server.client().discover({ service: "api" }, { headers: { authorization: `bearer ${readToken}` } })).instances).toEqual([]);
    expect(server.registry.stats().revision).toBe(0);
  });

  it("lets a read token discover, watch and ask the status, and nothing more; a write token does everything", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens(tokenFile) });
    const reader = createRegistryClient({ baseUrl: server.url, token: readToken });
    const writer = createRegistryClient({ baseUrl: server.url, token: writeToken, protocol: "connect" });
    const denied = await callError(reader.register({ instance: instance("by-reader") }));
    expect([denied.code, denied.rawMessage]).toEqual([Code.PermissionDenied, "the token may only read; Register needs a write token"]);
    for (const call of [reader.heartbeat({ service: "api", id: "x" }), reader.deregister({ service: "api", id: "x" }), reader.releaseExpiryHold({})]) {
      expect((await callError(call)).code).toBe(Code.PermissionDenied);
    }

    const watcher = new RegistryWatcher(reader, { service: "api" });
    const updates = watcher[Symbol.asyncIterator]();
    expect((await updates.next()).value).toMatchObject({ snapshot: true });
    const agent = new RegistryAgent(writer, instance("agent"));
    await agent.until("registered");
    const change = await updates.next();
    expect(change.done === true ? [] : change.value.events.map((event) => event.instance?.id)).toEqual(["agent"]);
    expect((await reader.discover({ service: "api" })).instances.map((found) => found.id)).toEqual(["agent"]);
    expect((await reader.status({})).instances).toBe(1);
    await agent.close();
    watcher.close();
  });

  it("lets a write token limited to some services change only those, on every protocol, and read everything", async () => {
    const teamToken = "t-5d0e7c29a4f1b386";
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens(`${tokenFile}write ${teamToken} api web\n`) });
    const admin = createRegistryClient({ baseUrl: server.url, token: writeToken });
    await admin.register({ instance: { ...instance("theirs"), service: "billing" } });
    for (const [name, make] of Object.entries(transports)) {
      const before = server.registry.currentRevision();
      const team = createClient(RegistryService, make(server.url));
      const headers = { authorization: `Bearer ${teamToken}` };
      const theirs = { service: "billing", id: "theirs" };
      const refusals = await Promise.all([
        callError(team.register({ instance: { ...instance(name.replace(/\W+/g, "-")), service: "billing" } }, { headers })),
        callError(team.heartbeat(theirs, { headers })),
        callError(team.drain({ ...theirs, reason: "mine now" }, { headers })),
        callError(team.undrain(theirs, { headers })),
        callError(team.deregister(theirs, { headers })),
      ]);
      expect(refusals.map((refused) => [name, refused.code, refused.rawMessage])).toEqual(refusals.map(() => [name, Code.PermissionDenied, 'the token may change only api, web, not "billing"']));
      const whole = await callError(team.releaseExpiryHold({}, { headers }));
      expect([name, whole.code, whole.rawMessage]).toEqual([name, Code.PermissionDenied, "the token may change only api, web; ReleaseExpiryHold changes the whole registry"]);
      expect(server.registry.currentRevision()).toBe(before);
      // Its own services it changes, and it reads every service.
      const id = name.replace(/\W+/g, "-");
      await team.register({ instance: { ...instance(id), service: "web" } }, { headers });
      await team.drain({ service: "web", id, reason: "canary" }, { headers });
      await team.deregister({ service: "web", id }, { headers });
      expect((await team.discover({ service: "billing" }, { headers })).instances.map((found) => found.id)).toEqual(["theirs"]);
    }
  });

  it("leaves health checks and reflection open: load balancers and buf curl's schema lookup send no token", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens(tokenFile) });
    const health = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
    expect((await health.check({ service: "" })).status).toBe(1);
    // No --schema: buf curl asks the registry's reflection service for it first.
    const curl = (...headers: string[]) =>
      exec("node_modules/.bin/buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...headers, "-d", '{"service":"api"}', `${server.url}/muster.v1.RegistryService/Discover`]).then(
        ({ stdout }) => stdout,
        (error: unknown) => (error as { stderr: string }).stderr,
      );
    expect(JSON.parse(await curl())).toMatchObject({ code: "unauthenticated" });
    // An empty registry's answer: every field at its default, which JSON leaves out.
    expect(JSON.parse(await curl("-H", `authorization: Bearer ${readToken}`))).toEqual({});
  });

  it("refuses a token file it cannot use, naming the line", () => {
    expect(() => parseAccessTokens("write short")).toThrow("line 1 of the token file: a token must have at least 16 characters");
    expect(() => parseAccessTokens(`# tokens\nadmin ${writeToken}`)).toThrow('line 2 of the token file must be "read <token>", "write <token>" or "write <token> <service> ..."');
    expect(() => parseAccessTokens(`read ${readToken} api`)).toThrow("line 1 of the token file: a read token reads every service; only a write token may be limited to some");
    expect(() => parseAccessTokens(`write ${writeToken} api Payments`)).toThrow('line 1 of the token file: "Payments" is not a service name (a DNS-1123 label)');
    expect(() => parseAccessTokens("# nothing yet\n")).toThrow("the token file holds no token");
  });
});

describe("muster serve --access-tokens", () => {
  it("requires the tokens of the file, and the CLI sends MUSTER_TOKEN", async () => {
    const folder = await tempDataDir();
    const file = join(folder, "tokens");
    await writeFile(file, tokenFile);
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data") }, ["--access-tokens", file]);
    const url = await serving.ready();
    await createRegistryClient({ baseUrl: url, token: writeToken }).register({ instance: instance("listed") });
    const list = ["ls", "api", "--registry", url];
    const anonymous = await MusterProcess.run(list);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr.trim()).toBe(`muster: the registry at ${url} refused the call: a token is required; set MUSTER_TOKEN to a token from its token file`);
    expect((await MusterProcess.run(list, { MUSTER_TOKEN: readToken })).stdout).toContain("listed");
    const leave = ["deregister", "api", "listed", "--registry", url];
    const asReader = await MusterProcess.run(leave, { MUSTER_TOKEN: readToken });
    expect(asReader.stderr.trim()).toBe("muster: the token may only read; Deregister needs a write token");
    expect((await MusterProcess.run(leave, { MUSTER_TOKEN: writeToken })).code).toBe(0);
    await serving.kill("SIGTERM");

    await writeFile(file, "write short\n");
    const refused = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(folder, "data")], { MUSTER_ACCESS_TOKENS_FILE: file });
    expect(refused.stderr.trim()).toBe(`muster: ${file}: line 1 of the token file: a token must have at least 16 characters (openssl rand -hex 32 makes a good one)`);
  });
});
