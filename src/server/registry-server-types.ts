import type { Logger } from "pino";
import type { Registry, RegistryOptions } from "../domain/registry.js";
import type { AccessTokens } from "./access-tokens.js";
import type { CorsPolicy } from "./cors.js";
import type { LeaderWrites } from "./forwarded-writes.js";
import type { PeerCheckPolicy } from "./peer-check.js";
import type { TlsCredentials } from "./tls-credentials.js";

/*
 * What `startRegistryServer` takes and gives.
 */

/** Where and how to serve; only `dataDir` is required. */
export interface RegistryServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 6878; 0 picks a free port. */
  readonly port?: number;
  /** The LevelDB directory, created if missing. */
  readonly dataDir: string;
  /** Default: a silent logger. */
  readonly logger?: Logger;
  /** The registry's own options; whether it is a follower comes from `following`. */
  readonly registry?: Omit<RegistryOptions, "followerOf">;
  /** How long shutdown waits for calls to finish. Default 5s. */
  readonly shutdownGraceMs?: number;
  /** The largest request message accepted, on every protocol. Default 1 MiB. */
  readonly readMaxBytes?: number;
  /** How clients that went away without closing their connections are found. Default `defaultPeerCheck` (60s PINGs, 20s to answer). */
  readonly peerCheck?: PeerCheckPolicy;
  /** Calls and watches one HTTP/2 connection may have open at once; more wait for a free one. Default 1,000. */
  readonly maxStreamsPerConnection?: number;
  /** Which web pages may call the registry from a browser. Default: none. */
  readonly cors?: CorsPolicy;
  /** Serve TLS (HTTPS, gRPC with TLS) with this certificate and key, both PEM. Default: cleartext. */
  readonly tls?: TlsCredentials;
  /** Require a bearer token of the right role for RegistryService's calls (`parseAccessTokens`). Default: no tokens, any caller may read and write. */
  readonly accessTokens?: AccessTokens;
  /** Serve Prometheus metrics at `GET /metrics` and count every call for them. Default false: nothing is counted. */
  readonly metrics?: boolean;
  /** Answer DNS for `<service>.service.<domain>` (default domain `muster`) on this address, UDP and TCP (`answerDnsQuery`), with this TTL (default 0: resolvers keep nothing). Default: no DNS. */
  readonly dns?: { readonly host: string; readonly port: number; readonly ttlSeconds?: number; readonly domain?: string };
  /** For a follower: its leader, which takes the writes it is sent, and the link's state for Status. Default: not a follower. */
  readonly following?: LeaderConnection;
}

/** A follower's leader, as its server needs it (`LeaderLink` is one). */
export interface LeaderConnection {
  /** The leader's URL. */
  readonly leader: string;
  /** The link now. */
  readonly state: FollowingState;
  /** Makes, on the leader, the writes this follower is sent (`forwardedWrites`). */
  readonly writes: LeaderWrites;
}

/** A follower's link to its leader, as Status reports it. */
export interface FollowingState {
  readonly leader: string;
  /** A stream from the leader is open now. */
  readonly connected: boolean;
  /** Why the last stream broke or could not be opened; empty while connected. */
  readonly lastError: string;
  /** The leader's revision as it last said; 0 before it has said anything. */
  readonly leaderRevision: bigint;
}

/** A registry serving on a port. */
export interface RunningRegistry {
  /** Such as http://127.0.0.1:6878 */
  readonly url: string;
  readonly port: number;
  /** The port DNS is answered on (UDP and TCP), when `dns` was asked for. */
  readonly dnsPort: number | undefined;
  readonly registry: Registry;
  /** Settles once the registry has answered its first call (a request for `/package.Service/Method`, not a dashboard page or metrics), of any protocol; never, if none comes. */
  readonly firstAnswered: Promise<void>;
  /** Ends streams with UNAVAILABLE, finishes writes, closes the database. */
  close(): Promise<void>;
  /**
   * Takes new access tokens or a new TLS certificate for the calls and
   * connections that come from now on, such as after a rotation. Open
   * streams whose token the new tokens refuse end with that refusal; the
   * others go on. Only what the registry was started with can be replaced:
   * a TypeError otherwise, and a ListenError ("tls-credentials") for an
   * unusable certificate. Either way nothing changes.
   */
  reload(update: { readonly accessTokens?: AccessTokens; readonly tls?: TlsCredentials }): ReloadOutcome;
}

/** What a reload did beyond taking the new files. */
export interface ReloadOutcome {
  /** Open streams ended because the new tokens refuse theirs. */
  readonly streamsEnded: number;
}
