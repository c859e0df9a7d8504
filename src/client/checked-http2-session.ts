import { connect, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionRequestOptions, type OutgoingHttpHeaders, type SecureClientSessionOptions } from "node:http2";
import { connect as netConnect, isIP } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import type { GrpcTransportOptions } from "@connectrpc/connect-node";

/** What connect-node's HTTP/2 transports ask of a session manager. */
type SessionManager = NonNullable<GrpcTransportOptions["sessionManager"]>;

/** How long a connection may take to open, when it is checked with a PING, and how long the answer may take. */
export interface ConnectionChecks {
  /** The registry's first HTTP/2 frame has not come this long after connecting began: the connection never opened. */
  readonly openTimeoutMs: number;
  /** Calls are open and nothing has been heard for this long: send a PING. */
  readonly intervalMs: number;
  /** No answer this long after the PING: the connection is dead. */
  readonly timeoutMs: number;
}

/**
 * The HTTP/2 connection of a registry client, replaced when it closes, and
 * given up for dead when it does not open or goes silent. A registry that
 * vanishes without closing the connection (a partition, a frozen or
 * powered-off host) is otherwise noticed only when TCP gives up, after
 * about 15 minutes, while every call on the connection waits.
 *
 * A connection that has not heard the registry's HTTP/2 settings
 * `openTimeoutMs` after it began (a host that drops packets, or one that
 * takes the TCP connection and says nothing) fails its calls with
 * UNAVAILABLE, so that a client of several registries goes on to the next
 * within that time rather than at its calls' deadlines.
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
    private readonly checks: ConnectionChecks,
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
      this.connection = new CheckedConnection(this.authority, this.connectOptions, this.checks);
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
  private opening: NodeJS.Timeout | undefined;
  private check: NodeJS.Timeout | undefined;
  private pingDeadline: NodeJS.Timeout | undefined;
  /** Where the socket connects, for errors that say which registry could not be reached. */
  private peer = { address: "", port: 0 };

  constructor(
    authority: string,
    connectOptions: SecureClientSessionOptions,
    private readonly checks: ConnectionChecks,
  ) {
    this.session = connect(authority, { createConnection: (url: URL) => this.openSocket(url, connectOptions) });
    // Infinity turns the check off (and a timer longer than 2^31 - 1 ms would fire at once).
    if (Number.isFinite(checks.openTimeoutMs)) this.opening = setTimeout(() => this.neverOpened(), checks.openTimeoutMs).unref();
    this.session.once("remoteSettings", () => {
      this.spoken = true;
      clearTimeout(this.opening);
      this.heard();
      if (this.openStreams.size > 0) this.scheduleCheck();
    });
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
    if (this.check !== undefined || this.pingDeadline !== undefined || !Number.isFinite(this.checks.intervalMs)) return;
    const due = Math.max(0, this.lastHeardAt + this.checks.intervalMs - Date.now());
    this.check = setTimeout(() => this.onCheck(), due).unref();
  }

  /** Reschedules itself while the connection is heard from, so data need not touch a timer. */
  private onCheck(): void {
    this.check = undefined;
    if (this.openStreams.size === 0 || !this.usable()) return;
    if (Date.now() - this.lastHeardAt < this.checks.intervalMs) return this.scheduleCheck();
    // No PING goes out before the connection opens: neverOpened() ends one that does not, and its settings start the checks.
    if (!this.spoken) return;
    const seconds = this.checks.timeoutMs / 1000;
    this.pingDeadline = setTimeout(() => this.giveUp(`the registry did not answer a PING within ${seconds}s`), this.checks.timeoutMs).unref();
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
    this.peer = { address: host, port };
    const cleartext = url.protocol !== "https:";
    const socket = cleartext ? netConnect({ host, port }) : tlsConnect({ ...options, host, port, servername: isIP(host) === 0 ? host : undefined, ALPNProtocols: ["h2"] });
    // A registry that serves TLS, asked in cleartext, closes the connection, or resets it when our bytes are still unread (Node 24, now and then).
    const unanswered = () => new ConnectError(`the connection closed before the registry answered${cleartext ? "; if it serves TLS, use https://" : ""}`, Code.Unavailable, undefined, undefined, this.peerError("closed unanswered"));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (cleartext && !this.spoken && error.code === "ECONNRESET") return this.failStreams(unanswered());
      this.failStreams(new ConnectError(`cannot connect to the registry: ${error.message}`, Code.Unavailable, undefined, undefined, error));
    });
    // Node would cancel the calls without a word.
    socket.once("close", () => {
      if (!this.spoken) this.failStreams(unanswered());
    });
    return socket;
  }

  /** An error naming the registry's address, as Node's own connection errors do, so callers can say which registry it was. */
  private peerError(what: string): Error {
    const { address, port } = this.peer;
    return Object.assign(new Error(`${what}: ${address}:${port}`), { address, port });
  }

  /** A host that drops packets leaves a connection opening for minutes, and one that takes it and says nothing, until TCP gives up. */
  private neverOpened(): void {
    this.giveUp(`the connection did not open within ${this.checks.openTimeoutMs / 1000}s`, this.peerError("no HTTP/2 answer"));
  }

  private giveUp(reason: string, cause?: Error): void {
    this.pingDeadline = undefined;
    const error = new ConnectError(`${reason}; the connection is given up for dead`, Code.Unavailable, undefined, undefined, cause);
    this.failStreams(error);
    this.session.destroy(error);
  }

  /** Node would fail a stream not yet sent with its own cancel error, which reads as INTERNAL. */
  private failStreams(error: ConnectError): void {
    for (const stream of this.openStreams) stream.destroy(error);
  }

  private stopChecking(): void {
    clearTimeout(this.opening);
    clearTimeout(this.check);
    clearTimeout(this.pingDeadline);
    this.check = undefined;
    this.pingDeadline = undefined;
  }
}
