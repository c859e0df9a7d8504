import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Socket } from "node:net";
import tls from "node:tls";
import type { StreamHandler } from "./grpc-fast-path.js";
import type { TlsCredentials } from "./tls-credentials.js";
import { checkPeer, defaultPeerCheck, type PeerCheckPolicy } from "./peer-check.js";

/** Handles requests from either HTTP version; connect-node's adapter is one. */
export type DualHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** `/package.Service/Method`, as every gRPC, gRPC-Web and Connect call is addressed (a Connect GET adds a query). */
const callPath = /^\/\w+(\.\w+)+\/\w+(\?|$)/;

function isCallPath(path: string | undefined): boolean {
  return path !== undefined && callPath.test(path);
}

/**
 * Streams (calls, watches) one HTTP/2 connection may have open at once.
 * Node's own default is unlimited, so one client could open watches until
 * the registry's memory ran out; clients wait for a free stream instead of
 * failing (Node's, Go's and browsers' HTTP/2 queue them), though on Node 22
 * and 24 one sent the instant another ends may be refused with
 * ENHANCE_YOUR_CALM, as the server still counts the ended one. nginx allows
 * 128 and Go's HTTP/2 server 250; a registry's clients hold long watches.
 */
export const defaultMaxStreamsPerConnection = 1000;

/**
 * One TCP port that speaks HTTP/2 (gRPC, gRPC-Web, Connect) and HTTP/1.1
 * (Connect and gRPC-Web, so plain curl works). In cleartext, Node has no h2c
 * upgrade, so each connection's first bytes decide: the HTTP/2 client
 * preface goes to the HTTP/2 server, anything else to the HTTP/1.1 one.
 * With `credentials`, connections are TLS and the protocol the client
 * chose in the handshake (ALPN) decides; one that names none is HTTP/1.1.
 * HTTP/2 streams are first offered to `fastPath`, raw; the ones it declines
 * reach `handler` through Node's request/response compatibility objects.
 * Connections whose clients went silent are closed (see `checkPeer`), and
 * so are ones that never send their first bytes.
 */
export class DualProtocolServer {
  private readonly tcp: net.Server;
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<http2.Http2Session>();
  /** Open requests per HTTP/1.1 connection, to tell idle keep-alive ones apart. */
  private readonly h1Requests = new Map<Socket, number>();
  private stopping = false;
  private markAnswered: (() => void) | undefined;
  /**
   * Settles once the first call (a request for `/package.Service/Method`) of
   * either HTTP version has been answered (its stream or response closed);
   * never, if none comes. A dashboard page, metrics or an unknown path does
   * not count, so that what runs first is a call's path (see `afterFirstAnswer`).
   * Once it has settled, requests cost nothing more.
   */
  readonly firstAnswered = new Promise<void>((resolve) => (this.markAnswered = resolve));

  constructor(
    handler: DualHandler,
    fastPath: StreamHandler = () => false,
    private readonly peerCheck: PeerCheckPolicy = defaultPeerCheck,
    credentials?: TlsCredentials,
    maxStreamsPerConnection = defaultMaxStreamsPerConnection,
  ) {
    this.h1 = http.createServer(handler);
    this.h1.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => {
      const socket = request.socket;
      this.h1Requests.set(socket, (this.h1Requests.get(socket) ?? 0) + 1);
      response.on("close", () => {
        if (this.markAnswered !== undefined && isCallPath(request.url)) this.answered();
        const open = (this.h1Requests.get(socket) ?? 1) - 1;
        this.h1Requests.set(socket, open);
        if (open === 0 && this.stopping) socket.destroy();
      });
    });
    // Never listens: it only turns declined streams into request/response pairs for `handler`.
    const compat = http2.createServer({}, handler);
    this.h2 = http2.createServer({ settings: { maxConcurrentStreams: maxStreamsPerConnection } });
    this.h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      if (this.markAnswered !== undefined && isCallPath(headers[":path"])) stream.once("close", () => this.answered());
      if (!fastPath(stream, headers)) compat.emit("stream", stream, headers, flags, rawHeaders);
    });
    this.h2.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      checkPeer(session, peerCheck);
    });
    // Answers are small and latency-bound: Nagle would hold one back until the previous one is acknowledged.
    this.tcp =
      credentials === undefined
        ? net.createServer({ noDelay: true }, (socket) => this.route(socket))
        : tls
            // A client certificate is asked for but not required at the handshake: the calls that need one are refused with a sentence (see certificateRefusal).
            .createServer({ noDelay: true, ...secureContextOf(credentials), requestCert: credentials.clientCa !== undefined, rejectUnauthorized: false, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: peerCheck.firstBytesMs }, (socket) => this.routeSecure(socket))
            // A client that fails its handshake (plain HTTP, an untrusted certificate) is its own problem; its socket is already destroyed.
            .on("tlsClientError", () => undefined);
  }

  private answered(): void {
    this.markAnswered?.();
    this.markAnswered = undefined;
  }

  /** A new certificate and key for the TLS connections that come from now on; open ones keep theirs. */
  useCredentials(credentials: TlsCredentials): void {
    if (!(this.tcp instanceof tls.Server)) throw new TypeError("the server was not started with TLS");
    this.tcp.setSecureContext(secureContextOf(credentials));
  }

  /** Listens on host:port (port 0 picks a free one) and returns the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.tcp.once("error", reject);
      this.tcp.listen({ host, port }, () => {
        this.tcp.off("error", reject);
        const address = this.tcp.address();
        resolve(typeof address === "object" && address !== null ? address.port : port);
      });
    });
  }

  /** Stops accepting connections and asks open ones to finish. */
  stopAccepting(): void {
    this.stopping = true;
    this.tcp.close();
    for (const session of this.sessions) session.close();
    for (const [socket, open] of this.h1Requests) if (open === 0) socket.destroy();
  }

  /** Waits up to `graceMs` for connections to finish, then cuts the rest. */
  async drain(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const socket of this.sockets) socket.destroy();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => {
      this.sockets.delete(socket);
      this.h1Requests.delete(socket);
    });
    socket.on("error", () => socket.destroy());
  }

  private routeSecure(socket: tls.TLSSocket): void {
    this.track(socket);
    if (socket.alpnProtocol === "h2") {
      this.h2.emit("connection", socket);
    } else {
      this.h1Requests.set(socket, 0);
      this.h1.emit("connection", socket);
    }
  }

  private route(socket: Socket): void {
    this.track(socket);
    const undecided = setTimeout(() => socket.destroy(), this.peerCheck.firstBytesMs).unref();
    socket.once("close", () => clearTimeout(undecided));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const seen = Math.min(head.length, http2Preface.length);
      const couldBeHttp2 = head.subarray(0, seen).equals(http2Preface.subarray(0, seen));
      if (couldBeHttp2 && seen < http2Preface.length) return;
      clearTimeout(undecided);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      if (couldBeHttp2) {
        // The HTTP/2 session drains the unshifted bytes itself; resuming here would feed them twice.
        this.h2.emit("connection", socket);
      } else {
        this.h1Requests.set(socket, 0);
        this.h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  }
}

function secureContextOf({ cert, key, clientCa }: TlsCredentials): tls.SecureContextOptions {
  return clientCa === undefined ? { cert, key } : { cert, key, ca: clientCa };
}
