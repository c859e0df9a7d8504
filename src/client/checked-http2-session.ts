import { connect, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionRequestOptions, type OutgoingHttpHeaders, type SecureClientSessionOptions } from "node:http2";
import { connect as netConnect, isIP } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import type { GrpcTransportOptions } from "@connectrpc/connect-node";

/** What connect-node's HTTP/2 transports ask of a session manager. */
type SessionManager = NonNullable<GrpcTransportOptions["sessionManager"]>;

/** When a connection is checked with a PING, and how long its answer may take. */
export interface PingPolicy {
  /** Calls are open and nothing has been heard for this long: send a PING. */
  readonly intervalMs: number;
  /** No answer this long after the PING: the connection is dead. */
  readonly timeoutMs: number;
}

/**
 * The HTTP/2 connection of a registry client, replaced when it closes, and
 * given up for dead when it goes silent. A registry that vanishes without
 * closing the connection (a partition, a frozen or powered-off host) is
 * otherwise noticed only when TCP gives up, after about 15 minutes, while
 * every call on the connection waits.
 *
 * Whenever calls are open and nothing has been heard for `intervalMs` (the
 * silence counts from the last response byte or PING answer, not from the
 * last call, so calls ended early by their deadlines do not hide it), a PING
 * goes out; no answer in `timeoutMs` destroys the connection, its calls fail
 * with UNAVAILABLE, and the next call opens a new one.
 *
 * Why not connect-node's own `Http2SessionManager` with `pingIntervalMs`:
 * in 2.1.2 and 2.2.0 its connection check and its keepalive share one PING
 * timeout, and a stream that closes while a check is under way clears it.
 * The check then never ends, and every later call waits on the dead
 * connection until its deadline, until TCP gives up. Agents sharing one
 * client hit that in 3 of 9 runs of `test/dead-connection.test.ts` ("agents
 * sharing one client"), and none of 6 with this class. Its PING timer can
 * also fire on a destroyed connection and throw out of the timer
 * (connect-es#1795, open).
 */
export class CheckedHttp2Session implements SessionManager {
  readonly authority: string;
  private connection: CheckedConnection | undefined;
  private readonly connections = new WeakMap<ClientHttp2Session, CheckedConnection>();

  /** `connectOptions` go to `tls.connect` for an https registry, such as the CA that signed its certificate. */
  constructor(
    baseUrl: string,
    private readonly pings: PingPolicy,
    private readonly connectOptions: SecureClientSessionOptions = {},
  ) {
    this.authority = new URL(baseUrl).origin;
  }

  request(method: string, path: string, headers: OutgoingHttpHeaders, options: Omit<ClientSessionRequestOptions, "signal">): Promise<ClientHttp2Stream> {
    return Promise.resolve(this.usableConnection().request({ ...headers, ":method": method, ":path": path }, options));
  }

  notifyResponseByteRead(stream: ClientHttp2Stream): void {
    this.connections.get(stream.session as ClientHttp2Session)?.heard();
  }

  private usableConnection(): CheckedConnection {
    if (this.connection === undefined || !this.connection.usable()) {
      this.connection = new CheckedConnection(this.authority, this.connectOptions, this.pings);
      this.connections.set(this.connection.session, this.connection);
    }
    return this.connection;
  }
}

/** One HTTP/2 connection and its PING check. */
class CheckedConnection {
  readonly session: ClientHttp2Session;
  private readonly openStreams = new Set<ClientHttp2Stream>();
  private lastHeardAt = Date.now();
  private goingAway = false;
  /** The registry has sent its HTTP/2 settings, so the connection reached an HTTP/2 server. */
  private spoken = false;
  private check: NodeJS.Timeout | undefined;
  private pingDeadline: NodeJS.Timeout | undefined;

  constructor(
    authority: string,
    connectOptions: SecureClientSessionOptions,
    private readonly pings: PingPolicy,
  ) {
    this.session = connect(authority, { createConnection: (url: URL) => this.openSocket(url, connectOptions) });
    this.session.once("remoteSettings", () => (this.spoken = true));
    // Its streams carry the error to their calls; an idle connection's error only ends it.
    this.session.on("error", () => undefined);
    this.session.once("goaway", () => (this.goingAway = true));
    this.session.once("close", () => this.stopChecking());
    // An idle connection does not keep the process alive; one with calls open does.
    this.session.unref();
  }

  /** False once closed, destroyed or told to go away: the next call opens a new connection. */
  usable(): boolean {
    return !this.goingAway && !this.session.closed && !this.session.destroyed;
  }

  request(headers: OutgoingHttpHeaders, options: Omit<ClientSessionRequestOptions, "signal">): ClientHttp2Stream {
    const stream = this.session.request(headers, options);
    if (this.openStreams.size === 0) this.session.ref();
    this.openStreams.add(stream);
    stream.once("response", () => this.heard());
    stream.once("close", () => {
      this.openStreams.delete(stream);
      if (this.openStreams.size === 0 && !this.session.destroyed) this.session.unref();
    });
    this.scheduleCheck();
    return stream;
  }

  heard(): void {
    this.lastHeardAt = Date.now();
  }

  private scheduleCheck(): void {
    // Infinity turns the check off (and a timer longer than 2^31 - 1 ms would fire at once).
    if (this.check !== undefined || this.pingDeadline !== undefined || !Number.isFinite(this.pings.intervalMs)) return;
    const due = Math.max(0, this.lastHeardAt + this.pings.intervalMs - Date.now());
    this.check = setTimeout(() => this.onCheck(), due).unref();
  }

  /** Reschedules itself while the connection is heard from, so data need not touch a timer. */
  private onCheck(): void {
    this.check = undefined;
    if (this.openStreams.size === 0 || !this.usable()) return;
    if (Date.now() - this.lastHeardAt < this.pings.intervalMs) return this.scheduleCheck();
    // A host that drops packets leaves a new connection opening for minutes; no PING goes out before it opens.
    if (this.session.connecting) return this.giveUp(`the connection did not open within ${this.pings.intervalMs / 1000}s`);
    const seconds = this.pings.timeoutMs / 1000;
    this.pingDeadline = setTimeout(() => this.giveUp(`the registry did not answer a PING within ${seconds}s`), this.pings.timeoutMs).unref();
    this.session.ping((error) => {
      clearTimeout(this.pingDeadline);
      this.pingDeadline = undefined;
      if (error !== null) return;
      this.heard();
      this.scheduleCheck();
    });
  }

  /**
   * The socket `http2.connect` would open, with one listener ahead of the
   * session's: a connection that fails (refused, or a certificate this
   * machine does not trust) fails its calls with UNAVAILABLE and the reason,
   * where Node would cancel them with an error that reads as INTERNAL.
   */
  private openSocket(url: URL, options: SecureClientSessionOptions): Duplex {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const socket = url.protocol === "https:" ? tlsConnect({ ...options, host, port, servername: isIP(host) === 0 ? host : undefined, ALPNProtocols: ["h2"] }) : netConnect({ host, port });
    socket.once("error", (error: Error) => this.failStreams(new ConnectError(`cannot connect to the registry: ${error.message}`, Code.Unavailable, undefined, undefined, error)));
    // Such as a registry that serves TLS, asked in cleartext: Node would cancel the calls without a word.
    socket.once("close", () => {
      if (!this.spoken) this.failStreams(new ConnectError("the connection closed before the registry answered; if it serves TLS, use https://", Code.Unavailable));
    });
    return socket;
  }

  private giveUp(reason: string): void {
    this.pingDeadline = undefined;
    const error = new ConnectError(`${reason}; the connection is given up for dead`, Code.Unavailable);
    this.failStreams(error);
    this.session.destroy(error);
  }

  /** Node would fail a stream not yet sent with its own cancel error, which reads as INTERNAL. */
  private failStreams(error: ConnectError): void {
    for (const stream of this.openStreams) stream.destroy(error);
  }

  private stopChecking(): void {
    clearTimeout(this.check);
    clearTimeout(this.pingDeadline);
    this.check = undefined;
    this.pingDeadline = undefined;
  }
}
