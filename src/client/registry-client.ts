import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { RegistryService } from "../../gen/muster/v1/registry_pb.js";
import { CheckedHttp2Session } from "./checked-http2-session.js";
import { failoverTransport } from "./failover-transport.js";

/** How long a failback probe (see `failbackAfterMs`) may take. */
const probeTimeoutMs = 5_000;

/** A typed client for muster.v1.RegistryService. */
export type RegistryClient = Client<typeof RegistryService>;

/** The wire protocols the registry's one port speaks. */
export type RegistryProtocol = "grpc" | "connect" | "grpc-web";

/** Where the registry is (required), how to speak to it, and how to prove who is calling (each with a default). */
export interface RegistryClientOptions {
  /**
   * Such as http://127.0.0.1:6878, or https://registry.internal:6878 for a
   * registry serving TLS. Or several: a leader and its followers (`muster
   * serve --follow`), called one at a time, moving on to the next after a
   * call fails with UNAVAILABLE (see `failoverTransport`).
   */
  readonly baseUrl: string | readonly string[];
  /**
   * Of several registries: while calls go to another than the first, how
   * often the first is asked (a Status call, in the background) whether it
   * is back; once it answers, the calls after go to it again. Default 30s;
   * `Infinity` stays where the calls went.
   */
  readonly failbackAfterMs?: number;
  /** Default "grpc" (HTTP/2). "connect" and "grpc-web" use HTTP/2 too unless httpVersion says "1.1". */
  readonly protocol?: RegistryProtocol;
  /** Default "2"; gRPC is always HTTP/2. */
  readonly httpVersion?: "1.1" | "2";
  readonly interceptors?: Interceptor[];
  /**
   * How long an HTTP/2 connection may go unheard while calls are open before
   * a PING checks it (a call on a connection unheard that long gets one at
   * once). Default 10s; `Infinity` sends no PINGs. A registry
   * that vanishes without closing the connection (a network partition, a
   * frozen or powered-off host) is otherwise noticed only when TCP gives up,
   * after about 15 minutes: until then a Watch hears nothing and every call
   * on the connection hangs.
   */
  readonly pingIntervalMs?: number;
  /** How long a PING may go unanswered before the connection is given up for dead and its calls fail with UNAVAILABLE. Default 5s. */
  readonly pingTimeoutMs?: number;
  /**
   * How long a new HTTP/2 connection may take to open (to hear the
   * registry's first HTTP/2 frame) before its calls fail with UNAVAILABLE.
   * A host that is down drops packets rather than refusing them, so without
   * it the calls would wait for their deadlines; a client of several
   * registries goes on to the next instead. Default: `pingIntervalMs`
   * (10s); `Infinity` waits for TCP to give up.
   */
  readonly connectTimeoutMs?: number;
  /**
   * For an https registry whose certificate a private CA signed: that CA's
   * certificate, PEM. Default: Node's trusted roots, plus the file named by
   * NODE_EXTRA_CA_CERTS when the process started.
   */
  readonly ca?: string | Buffer;
  /** For a registry that requires client certificates (mutual TLS): this client's certificate, PEM, signed by the registry's client CA. Default none. */
  readonly cert?: string | Buffer;
  /** The private key of `cert`, PEM. */
  readonly key?: string | Buffer;
  /** For a registry that requires one: the bearer token sent with every call. Default none. */
  readonly token?: string;
}

/** The default registry address, where `muster serve` listens. */
export const defaultRegistryUrl = "http://127.0.0.1:6878";

/**
 * Creates a client over the protocol of your choice. Every protocol reaches
 * the same port; gRPC is the default because every language speaks it.
 * HTTP/2 connections are kept honest with PINGs (see `pingIntervalMs`);
 * HTTP/1.1 has no PING, so there only a call's own deadline ends a hang.
 */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const urls = typeof options.baseUrl === "string" ? [options.baseUrl] : options.baseUrl;
  const transports = urls.map((baseUrl) => registryTransport(baseUrl, options));
  const [only] = transports;
  if (only === undefined) throw new TypeError("createRegistryClient: baseUrl must name at least one registry");
  if (transports.length === 1) return createClient(RegistryService, only);
  const probe = (transport: Transport) => createClient(RegistryService, transport).status({}, { timeoutMs: probeTimeoutMs });
  return createClient(RegistryService, failoverTransport(transports, { everyMs: options.failbackAfterMs ?? 30_000, probe }));
}

function registryTransport(baseUrl: string, options: RegistryClientOptions): Transport {
  const interceptors = options.token === undefined ? (options.interceptors ?? []) : [bearer(options.token), ...(options.interceptors ?? [])];
  const { ca, cert, key } = options;
  const tls = { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
  const intervalMs = options.pingIntervalMs ?? 10_000;
  const sessionManager = new CheckedHttp2Session(baseUrl, { openTimeoutMs: options.connectTimeoutMs ?? intervalMs, intervalMs, timeoutMs: options.pingTimeoutMs ?? 5_000 }, tls);
  const http = options.httpVersion === "1.1" ? { httpVersion: "1.1" as const, nodeOptions: tls } : { httpVersion: "2" as const, sessionManager };
  switch (options.protocol ?? "grpc") {
    case "grpc":
      return createGrpcTransport({ baseUrl, interceptors, sessionManager });
    case "connect":
      return createConnectTransport({ baseUrl, interceptors, ...http, useBinaryFormat: true });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, interceptors, ...http });
  }
}

function bearer(token: string): Interceptor {
  const authorization = `Bearer ${token}`;
  return (next) => (request) => {
    request.header.set("authorization", authorization);
    return next(request);
  };
}
