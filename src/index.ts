/**
 * muster's public API: the client SDK for agents and watchers, the server
 * for embedding, and the generated messages.
 */
export { createRegistryClient, defaultRegistryUrl, type RegistryClient, type RegistryClientOptions, type RegistryProtocol } from "./client/registry-client.js";
export { RegistryAgent, type AgentOptions, type AgentState, type AgentStateChange } from "./client/agent.js";
export { RegistryWatcher, type WatchFilter, type WatchUpdate, type WatcherOptions } from "./client/watcher.js";
export type { BackoffOptions } from "./client/backoff.js";
export { grpcProbe, httpProbe, probeOnce, reportProbedHealth, tcpProbe, type HealthCheckOptions, type Probe, type ProbeResult } from "./client/health-probe.js";
export { startRegistryServer, ListenError, type ListenErrorCode, type RegistryServerOptions, type RunningRegistry, type TlsCredentials } from "./server/registry-server.js";
export { parseAccessTokens, type AccessRole, type AccessTokens } from "./server/access-tokens.js";
export type { CorsPolicy } from "./server/cors.js";
export { defaultPeerCheck, type PeerCheckPolicy } from "./server/peer-check.js";
export { StoreError, type StoreErrorCode } from "./store/store-error.js";
export * from "../gen/muster/v1/registry_pb.js";
