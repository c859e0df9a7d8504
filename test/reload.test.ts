import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "node:tls";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it, vi } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { RegistryWatcher } from "../src/client/watcher.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { ListenError } from "../src/server/registry-server.js";
import { RegistryService } from "../gen/muster/v1/registry_pb.js";
import { callError } from "./support/call-error.js";
import { moreTransports, transports } from "./support/clients.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { tlsPem } from "./support/tls-fixtures.js";

// Rotating a token or a certificate should not need a restart.

const { ca, cert, key, nextCert, nextKey } = tlsPem;
const [oldToken, newToken, keptToken] = ["w-0ld0ld0ld0ld0ld0ld", "w-n3wn3wn3wn3wn3wn3w", "r-k3ptk3ptk3ptk3pt"];
const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });

/** The certificate a new TLS connection is shown, and the protocol it agreed on. */
function handshake(url: string): Promise<{ fingerprint: string; protocol: string | false | null }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, ALPNProtocols: ["h2"] }, () => {
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, protocol: socket.alpnProtocol });
      socket.end();
    }).on("error", reject);
  });
}

describe("RunningRegistry.reload", () => {
  it("takes new tokens and a new certificate for the calls and connections that follow", async () => {
    const server = await TestRegistry.start({ tls: { cert, key }, accessTokens: parseAccessTokens(`write ${oldToken}\nread ${keptToken}`) });
    const before = await handshake(server.url);
    const oldClient = createRegistryClient({ baseUrl: server.url, ca, token: oldToken });
    await oldClient.register({ instance: instance("before") });
    // A watch stream whose token the new tokens still accept goes on.
    const watcher = new RegistryWatcher(createRegistryClient({ baseUrl: server.url, ca, token: keptToken }), { service: "api" });
    const updates = watcher[Symbol.asyncIterator]();
    await updates.next();

    expect(server.reload({ accessTokens: parseAccessTokens(`write ${newToken}\nread ${keptToken}`), tls: { cert: nextCert, key: nextKey } })).toEqual({ streamsEnded: 0 });
    const after = await handshake(server.url);
    expect(after.fingerprint).not.toBe(before.fingerprint);
    expect(after.protocol).toBe("h2");
    const refused = await callError(createRegistryClient({ baseUrl: server.url, ca, token: oldToken }).discover({ service: "api" }));
    expect(refused.code).toBe(Code.Unauthenticated);
    await createRegistryClient({ baseUrl: server.url, ca, token: newToken }).register({ instance: instance("after") });
    const next = await updates.next();
    expect(next.done === true ? [] : next.value.events.map((event) => event.instance?.id)).toEqual(["after"]);
    watcher.close();
  });

  it("ends the open streams whose token the new tokens refuse, on every protocol, and only those", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens(`write ${oldToken}\nread ${keptToken}`) });
    const asOld = { authorization: `Bearer ${oldToken}` };
    const streams = Object.entries({ ...transports, ...moreTransports }).map(([name, make]) => {
      const answers = createClient(RegistryService, make(server.url)).watch({ service: "api" }, { headers: asOld })[Symbol.asyncIterator]();
      return { name, answers };
    });
    const grpcJs = grpcJsClient(server.url);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", asOld.authorization);
    const grpcJsStream = grpcJs.watch({ service: "api" }, metadata);
    const grpcJsEnd = new Promise<grpc.ServiceError>((resolve) => grpcJsStream.on("error", resolve));
    const kept = server.client().watch({ service: "api" }, { headers: { authorization: `Bearer ${keptToken}` } })[Symbol.asyncIterator]();
    for (const { answers } of [...streams, { answers: kept }]) expect((await answers.next()).value).toMatchObject({ snapshot: true });
    // Streams that ended before the reload are not counted (nor kept): one cancelled on the gRPC fast path, one on Connect's.
    for (const transport of ["gRPC over HTTP/2", "Connect JSON over HTTP/1.1"]) {
      const cancel = new AbortController();
      const answers = server.client(transport).watch({ service: "api" }, { headers: asOld, signal: cancel.signal })[Symbol.asyncIterator]();
      await answers.next();
      cancel.abort();
    }
    await vi.waitFor(() => expect(server.registry.stats().watchers).toBe(streams.length + 2));

    expect(server.reload({ accessTokens: parseAccessTokens(`write ${newToken}\nread ${keptToken}`) })).toEqual({ streamsEnded: streams.length + 1 });
    for (const { name, answers } of streams) {
      const ended = await callError(answers.next());
      expect([name, ended.code, ended.rawMessage]).toEqual([name, Code.Unauthenticated, expect.stringContaining("the registry's tokens were replaced and this stream's token no longer allows it: the token is not one of the registry's")]);
    }
    const grpcJsError = await grpcJsEnd;
    expect([grpcJsError.code, grpcJsError.details]).toEqual([grpc.status.UNAUTHENTICATED, expect.stringContaining("the registry's tokens were replaced")]);
    await vi.waitFor(() => expect(server.registry.stats().watchers).toBe(1));
    await createRegistryClient({ baseUrl: server.url, token: newToken }).register({ instance: instance("after") });
    const next = await kept.next();
    expect(next.done === true ? [] : next.value.events.map((event) => event.instance?.id)).toEqual(["after"]);
    await kept.return?.();
    grpcJs.close();
  });

  it("changes nothing for a certificate it cannot use, or for what the registry was not started with", async () => {
    const server = await TestRegistry.start({ tls: { cert, key } });
    const before = await handshake(server.url);
    expect(() => server.reload({ tls: { cert: nextCert, key } })).toThrow(ListenError);
    expect(() => server.reload({ accessTokens: parseAccessTokens(`write ${newToken}`) })).toThrow("reload replaces only the access tokens, TLS certificate and client CA the registry was started with");
    expect((await handshake(server.url)).fingerprint).toBe(before.fingerprint);
    expect((await createRegistryClient({ baseUrl: server.url, ca }).discover({ service: "api" })).instances).toEqual([]);
  });
});

describe("muster serve on SIGHUP", () => {
  it("reads its token file and certificate again, and keeps the previous ones when the new ones are unusable", async () => {
    const folder = await tempDataDir();
    const files = { tokens: join(folder, "tokens"), cert: join(folder, "cert.pem"), key: join(folder, "key.pem") };
    await Promise.all([writeFile(files.tokens, `write ${oldToken}\n`), writeFile(files.cert, cert), writeFile(files.key, key)]);
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data") }, ["--access-tokens", files.tokens, "--tls-cert", files.cert, "--tls-key", files.key]);
    const url = await serving.ready();
    const before = await handshake(url);
    const asOld = createRegistryClient({ baseUrl: url, ca, token: oldToken });
    const asNew = createRegistryClient({ baseUrl: url, ca, token: newToken });

    const oldWatch = asOld.watch({})[Symbol.asyncIterator]();
    await oldWatch.next();

    await Promise.all([writeFile(files.tokens, `write ${newToken}\n`), writeFile(files.cert, nextCert), writeFile(files.key, nextKey)]);
    serving.signal("SIGHUP");
    const reloaded = await serving.line((line) => line.includes("reloaded the token file and TLS certificate"));
    expect(JSON.parse(reloaded)).toMatchObject({ tokens: 1, streamsEnded: 1 });
    expect((await callError(oldWatch.next())).code).toBe(Code.Unauthenticated);
    expect((await callError(asOld.status({}))).code).toBe(Code.Unauthenticated);
    expect((await asNew.status({})).instances).toBe(0);
    const after = await handshake(url);
    expect(after.fingerprint).not.toBe(before.fingerprint);

    await writeFile(files.tokens, "write short\n");
    serving.signal("SIGHUP");
    const failed = await serving.line((line) => line.includes("reload (SIGHUP) failed"));
    expect(failed).toContain("line 1 of the token file: a token must have at least 16 characters");
    expect((await asNew.status({})).instances).toBe(0);
    expect((await handshake(url)).fingerprint).toBe(after.fingerprint);
    const exit = await serving.kill("SIGTERM");
    expect(exit.code).toBe(0);
  });
});
