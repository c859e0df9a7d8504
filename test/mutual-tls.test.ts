import { execFile } from "node:child_process";
import http2 from "node:http2";
import https from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { RegistryService } from "../gen/muster/v1/registry_pb.js";
import { callError } from "./support/call-error.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { tlsFiles, tlsPem } from "./support/tls-fixtures.js";

// Mutual TLS: only clients whose certificate the registry's client CA signed may use it.

const { ca, cert, key, clientCa, clientCert, clientKey, strangerCert, strangerKey } = tlsPem;
const instance = (id: string) => ({ service: "api", id, address: "10.0.0.1:80", ttl: durationFromMs(600_000) });
const exec = promisify(execFile);
const required = "a client certificate is required: this registry takes calls only from clients with a certificate its client CA signed";

describe("a registry that requires client certificates", () => {
  it("serves clients whose certificate its client CA signed, on every protocol", async () => {
    const server = await TestRegistry.start({ tls: { cert, key, clientCa } });
    const identity = { ca, cert: clientCert, key: clientKey };
    await createRegistryClient({ baseUrl: server.url, ...identity }).register({ instance: instance("grpc") });
    await createRegistryClient({ baseUrl: server.url, ...identity, protocol: "connect", httpVersion: "1.1" }).register({ instance: instance("connect") });
    await createRegistryClient({ baseUrl: server.url, ...identity, protocol: "grpc-web" }).register({ instance: instance("grpc-web") });
    const grpcJs = grpcJsClient(server.url, grpc.credentials.createSsl(ca, clientKey, clientCert));
    await grpcJs.unary("Register", { instance: { service: "api", id: "grpc-js", address: "10.0.0.1:80" } });
    grpcJs.close();
    const found = await createRegistryClient({ baseUrl: server.url, ...identity }).discover({ service: "api" });
    expect(found.instances.map((one) => one.id).sort()).toEqual(["connect", "grpc", "grpc-js", "grpc-web"]);
  });

  it("refuses a client without a certificate, or with one another CA signed, with UNAUTHENTICATED, and stores nothing", async () => {
    const server = await TestRegistry.start({ tls: { cert, key, clientCa } });
    const transports = {
      "gRPC (fast path)": (nodeOptions: object) => createRegistryClient({ baseUrl: server.url, ca, ...nodeOptions }),
      "Connect over HTTP/1.1": (nodeOptions: object) => createClient(RegistryService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions: { ca, ...nodeOptions } })),
      "gRPC-Web over HTTP/2": (nodeOptions: object) => createClient(RegistryService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2", nodeOptions: { ca, ...nodeOptions } })),
    };
    for (const [name, make] of Object.entries(transports)) {
      const none = await callError(make({}).register({ instance: instance(name) }));
      expect([name, none.code, none.rawMessage.startsWith(required)]).toEqual([name, Code.Unauthenticated, true]);
      const stranger = await callError(make({ cert: strangerCert, key: strangerKey }).discover({ service: "api" }));
      expect([name, stranger.code, stranger.rawMessage]).toEqual([name, Code.Unauthenticated, expect.stringMatching(/^the client certificate is not one the registry's client CA signed \(.+\)/)]);
    }
    const grpcJs = grpcJsClient(server.url, grpc.credentials.createSsl(ca));
    await expect(grpcJs.unary("Register", { instance: { service: "api", id: "grpc-js", address: "10.0.0.1:80" } })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    grpcJs.close();
    expect(server.registry.stats().revision).toBe(0);
    // Health checks come from load balancers, which hold no certificate.
    const health = await createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions: { ca } })).check({});
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("serves /metrics and /prometheus/targets to a scraper with a certificate, over HTTP/1.1 and HTTP/2, and refuses one without", async () => {
    const server = await TestRegistry.start({ tls: { cert, key, clientCa }, metrics: true });
    for (const path of ["/metrics", "/prometheus/targets"]) {
      const scraped = await httpsGet(`${server.url}${path}`, { ca, cert: clientCert, key: clientKey });
      expect([path, scraped.status]).toEqual([path, 200]);
      expect([path, (await http2Get(server.url, path, { ca, cert: clientCert, key: clientKey })).status]).toEqual([path, 200]);
      const refused = await httpsGet(`${server.url}${path}`, { ca });
      expect([path, refused.status, refused.body.startsWith(required)]).toEqual([path, 401, true]);
      const stranger = await http2Get(server.url, path, { ca, cert: strangerCert, key: strangerKey });
      expect([path, stranger.status]).toEqual([path, 401]);
    }
  });

  it("takes a rotated client CA on reload, and no reload can turn client certificates on or off", async () => {
    const server = await TestRegistry.start({ tls: { cert, key, clientCa } });
    expect(() => server.reload({ tls: { cert, key } })).toThrow("reload replaces only the access tokens, TLS certificate and client CA the registry was started with");
    // The stranger's CA is not at hand, so the rotation is to the same CA: the new context must still ask for and check certificates.
    server.reload({ tls: { cert, key, clientCa } });
    await createRegistryClient({ baseUrl: server.url, ca, cert: clientCert, key: clientKey }).register({ instance: instance("after") });
    expect((await callError(createRegistryClient({ baseUrl: server.url, ca, cert: strangerCert, key: strangerKey }).discover({}))).code).toBe(Code.Unauthenticated);
    const plain = await TestRegistry.start({ tls: { cert, key } });
    expect(() => plain.reload({ tls: { cert, key, clientCa } })).toThrow("reload replaces only");
  });
});

describe("muster serve --tls-client-ca", () => {
  it("takes calls from the CLI and buf curl with a client certificate, and explains the refusal without one", async () => {
    const folder = await tempDataDir();
    const serving = MusterProcess.serve({ MUSTER_DATA_DIR: join(folder, "data") }, ["--tls-cert", tlsFiles.cert, "--tls-key", tlsFiles.key, "--tls-client-ca", tlsFiles.clientCa]);
    const url = await serving.ready();
    const trustsRegistry = { NODE_EXTRA_CA_CERTS: tlsFiles.ca };

    const refused = await MusterProcess.run(["ls", "--registry", url], trustsRegistry);
    expect([refused.code, refused.stderr.trim()]).toEqual([1, `muster: the registry at ${url} refused the call: a client certificate is required; set MUSTER_TLS_CLIENT_CERT and MUSTER_TLS_CLIENT_KEY to a certificate its client CA signed and its key`]);
    const withIdentity = { ...trustsRegistry, MUSTER_TLS_CLIENT_CERT: tlsFiles.clientCert, MUSTER_TLS_CLIENT_KEY: tlsFiles.clientKey };
    const status = await MusterProcess.run(["status", "--registry", url], withIdentity);
    expect([status.code, status.stdout]).toEqual([0, expect.stringContaining("instances")]);
    const half = await MusterProcess.run(["status", "--registry", url], { ...trustsRegistry, MUSTER_TLS_CLIENT_CERT: tlsFiles.clientCert });
    expect(half.stderr.trim()).toBe("muster: a client certificate needs its key: --tls-client-cert (MUSTER_TLS_CLIENT_CERT) and --tls-client-key (MUSTER_TLS_CLIENT_KEY) go together");

    const curled = await exec("node_modules/.bin/buf", ["curl", "--cacert", tlsFiles.ca, "--cert", tlsFiles.clientCert, "--key", tlsFiles.clientKey, "--protocol", "grpc", "--schema", "proto", "-d", JSON.stringify({ instance: { service: "api", id: "curl", address: "10.0.0.1:80" } }), `${url}/muster.v1.RegistryService/Register`]);
    expect(JSON.parse(curled.stdout)).toMatchObject({ instance: { id: "curl" } });
    expect((await serving.kill("SIGTERM")).code).toBe(0);

    const withoutTls = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(folder, "other"), "--tls-client-ca", tlsFiles.clientCa]);
    expect([withoutTls.code, withoutTls.stderr.trim()]).toEqual([1, "muster: client certificates (--tls-client-ca, MUSTER_TLS_CLIENT_CA) need TLS: give --tls-cert and --tls-key too"]);
    const notACa = await MusterProcess.run(["serve", "--addr", "127.0.0.1:0", "--data-dir", join(folder, "other"), "--tls-cert", tlsFiles.cert, "--tls-key", tlsFiles.key, "--tls-client-ca", join(folder, "data", "CURRENT")]);
    expect([notACa.code, notACa.stderr.trim()]).toEqual([1, expect.stringMatching(/^muster: cannot serve TLS: the client CA is not a PEM certificate \(/)]);
  });
});

/** GET over HTTPS/1.1 with the given TLS options, as a Prometheus scrape with a tls_config. */
function httpsGet(url: string, options: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ...options, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk)).on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

/** GET over HTTP/2 with TLS. */
function http2Get(url: string, path: string, options: http2.SecureClientSessionOptions): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, options);
    session.on("error", reject);
    const request = session.request({ ":path": path });
    request.on("response", (headers) => {
      resolve({ status: Number(headers[":status"]) });
      session.close();
    });
    request.on("error", reject);
    request.resume();
  });
}
