import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { normalizeOrigin } from "../server/cors.js";
import { checkDnsDomain, defaultDnsDomain } from "../server/dns-names.js";
import { defaultMaxStreamsPerConnection } from "../server/dual-protocol-server.js";
import { parseHostPort } from "../server/host-port.js";
import type { PeerCheckPolicy } from "../server/peer-check.js";
import { CliError, describeFileError } from "./cli-error.js";

/** What `muster serve` runs with, once flags, environment, config file and defaults are merged. */
export interface ServeConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** Events kept for resuming watchers. */
  readonly historyLimit: number;
  /** The share of instances silent at once that holds expiry. */
  readonly massExpiryThreshold: number;
  /** Quiet seconds after which the process hands a burst's memory back; 0 never does. */
  readonly idleMemoryReleaseSeconds: number;
  /** MiB V8's young generation may grow to; 0 leaves its size to V8. */
  readonly youngGenerationMiB: number;
  /** Web pages (origins, or "*") that may call the registry from a browser; none by default. */
  readonly corsOrigins: readonly string[];
  /** PEM files of the certificate and key to serve TLS with; cleartext when absent. */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile: string | undefined } | undefined;
  /** How clients that vanished without closing their connections are found. */
  readonly peerCheck: PeerCheckPolicy;
  /** Calls and watches one HTTP/2 connection may have open at once. */
  readonly maxStreamsPerConnection: number;
  /** The file of bearer tokens callers must present; anyone may call when absent. */
  readonly accessTokensFile: string | undefined;
  /** Serve Prometheus metrics at GET /metrics. */
  readonly metrics: boolean;
  /** Where to answer DNS, and the TTL of its answers; no DNS when absent. */
  readonly dns: { readonly host: string; readonly port: number; readonly ttlSeconds: number; readonly domain: string } | undefined;
  /** The leader to copy, as a follower, with the token, CA file and client certificate to call it with; a registry of its own when absent. */
  readonly follow: { readonly leader: string; readonly token: string | undefined; readonly caFile: string | undefined; readonly client: { readonly certFile: string; readonly keyFile: string } | undefined } | undefined;
}

/** The log levels pino knows, most verbose first; `silent` logs nothing. */
export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
/** One of `logLevels`. */
export type LogLevel = (typeof logLevels)[number];

/** Settings as text, from one source; all optional. */
export interface ServeSettings {
  addr?: string | undefined;
  dataDir?: string | undefined;
  logLevel?: string | undefined;
  historyLimit?: string | undefined;
  massExpiryThreshold?: string | undefined;
  idleMemoryReleaseSeconds?: string | undefined;
  youngGenerationMiB?: string | undefined;
  /** Comma-separated. */
  corsOrigins?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsClientCa?: string | undefined;
  peerCheckSeconds?: string | undefined;
  peerTimeoutSeconds?: string | undefined;
  firstBytesSeconds?: string | undefined;
  maxStreamsPerConnection?: string | undefined;
  accessTokensFile?: string | undefined;
  /** on or off (also true/false, 1/0). */
  metrics?: string | undefined;
  dnsAddr?: string | undefined;
  dnsTtlSeconds?: string | undefined;
  dnsDomain?: string | undefined;
  follow?: string | undefined;
  followToken?: string | undefined;
  followCa?: string | undefined;
  followCert?: string | undefined;
  followKey?: string | undefined;
}

const defaults = { addr: "127.0.0.1:6878", dataDir: "muster-data", logLevel: "info", historyLimit: "10000", massExpiryThreshold: "0.5", idleMemoryReleaseSeconds: "5", youngGenerationMiB: "16", corsOrigins: "", tlsCert: "", tlsKey: "", tlsClientCa: "", peerCheckSeconds: "60", peerTimeoutSeconds: "20", firstBytesSeconds: "30", maxStreamsPerConnection: String(defaultMaxStreamsPerConnection), accessTokensFile: "", metrics: "off", dnsAddr: "", dnsTtlSeconds: "0", dnsDomain: defaultDnsDomain, follow: "", followToken: "", followCa: "", followCert: "", followKey: "" };
const settingNames = Object.keys(defaults);
const switches: Record<string, boolean | undefined> = { on: true, true: true, "1": true, off: false, false: false, "0": false };

/** The MUSTER_* environment variables, as settings. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): ServeSettings {
  return {
    addr: env.MUSTER_ADDR,
    dataDir: env.MUSTER_DATA_DIR,
    logLevel: env.MUSTER_LOG_LEVEL,
    historyLimit: env.MUSTER_HISTORY_LIMIT,
    massExpiryThreshold: env.MUSTER_MASS_EXPIRY_THRESHOLD,
    idleMemoryReleaseSeconds: env.MUSTER_IDLE_MEMORY_RELEASE_SECONDS,
    youngGenerationMiB: env.MUSTER_YOUNG_GENERATION_MIB,
    corsOrigins: env.MUSTER_CORS_ORIGINS,
    tlsCert: env.MUSTER_TLS_CERT,
    tlsKey: env.MUSTER_TLS_KEY,
    tlsClientCa: env.MUSTER_TLS_CLIENT_CA,
    peerCheckSeconds: env.MUSTER_PEER_CHECK_SECONDS,
    maxStreamsPerConnection: env.MUSTER_MAX_STREAMS_PER_CONNECTION,
    peerTimeoutSeconds: env.MUSTER_PEER_TIMEOUT_SECONDS,
    firstBytesSeconds: env.MUSTER_FIRST_BYTES_SECONDS,
    accessTokensFile: env.MUSTER_ACCESS_TOKENS_FILE,
    metrics: env.MUSTER_METRICS,
    dnsAddr: env.MUSTER_DNS_ADDR,
    dnsTtlSeconds: env.MUSTER_DNS_TTL_SECONDS,
    dnsDomain: env.MUSTER_DNS_DOMAIN,
    follow: env.MUSTER_FOLLOW,
    followToken: env.MUSTER_FOLLOW_TOKEN,
    followCa: env.MUSTER_FOLLOW_CA,
    followCert: env.MUSTER_FOLLOW_CERT,
    followKey: env.MUSTER_FOLLOW_KEY,
  };
}

/**
 * Reads a JSON config file such as {"addr": "0.0.0.0:6878", "dataDir":
 * "/var/lib/muster"}. Relative paths (dataDir, tlsCert, tlsKey, tlsClientCa, accessTokensFile, followCa, followCert, followKey) are taken
 * from the file's folder.
 */
export function settingsFromFile(path: string): ServeSettings {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read config file ${path}: ${describeFileError(error)}; check the path given to --config (MUSTER_CONFIG)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`config file ${path} is not valid JSON (${(error as Error).message}); it should look like {"addr": "127.0.0.1:6878", "dataDir": "muster-data"}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new CliError(`config file ${path} must hold a JSON object`);
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!settingNames.includes(key)) throw new CliError(`config file ${path}: unknown setting "${key}" (known: ${settingNames.join(", ")})`);
    const list = Array.isArray(value) && value.every((item) => typeof item === "string");
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean" && !list) throw new CliError(`config file ${path}: "${key}" must be a string, a number, true or false, or a list of strings`);
    settings[key] = list ? value.join(",") : String(value);
  }
  for (const file of ["dataDir", "tlsCert", "tlsKey", "tlsClientCa", "accessTokensFile", "followCa", "followCert", "followKey"]) if (settings[file] !== undefined) settings[file] = resolve(path, "..", settings[file]);
  return settings;
}

/** Merges sources, first one wins, and validates the result. */
export function resolveServeConfig(...sources: ServeSettings[]): ServeConfig {
  const pick = (key: keyof ServeSettings): string => sources.map((source) => source[key]).find((value) => value !== undefined) ?? defaults[key];
  const address = addressSetting("the listen address (--addr, MUSTER_ADDR)", pick("addr"));
  const logLevel = pick("logLevel");
  if (!(logLevels as readonly string[]).includes(logLevel)) throw new CliError(`log level must be one of ${logLevels.join(", ")} (got "${logLevel}")`);
  const historyLimit = Number(pick("historyLimit"));
  if (!Number.isInteger(historyLimit) || historyLimit < 1) throw new CliError(`history limit must be a whole number of events, at least 1 (got "${pick("historyLimit")}")`);
  const massExpiryThreshold = Number(pick("massExpiryThreshold"));
  if (!(massExpiryThreshold > 0 && massExpiryThreshold <= 1)) {
    throw new CliError(`mass expiry threshold must be a share above 0 and at most 1, such as 0.5 (got "${pick("massExpiryThreshold")}")`);
  }
  const idleMemoryReleaseSeconds = Number(pick("idleMemoryReleaseSeconds"));
  if (!Number.isInteger(idleMemoryReleaseSeconds) || idleMemoryReleaseSeconds < 0) {
    throw new CliError(`idle memory release must be a whole number of seconds, 0 to turn it off (got "${pick("idleMemoryReleaseSeconds")}")`);
  }
  const youngGenerationMiB = Number(pick("youngGenerationMiB"));
  if (!Number.isInteger(youngGenerationMiB) || youngGenerationMiB < 0) {
    throw new CliError(`young generation must be a whole number of MiB, 0 to leave its size to V8 (got "${pick("youngGenerationMiB")}")`);
  }
  const corsOrigins = pick("corsOrigins")
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  for (const origin of corsOrigins) {
    try {
      normalizeOrigin(origin);
    } catch (error) {
      throw new CliError(`${(error as Error).message} (--cors-origin, MUSTER_CORS_ORIGINS)`);
    }
  }
  const [certFile, keyFile] = [pick("tlsCert"), pick("tlsKey")];
  if ((certFile === "") !== (keyFile === "")) {
    throw new CliError(`TLS needs both a certificate and its key: --tls-cert (MUSTER_TLS_CERT) and --tls-key (MUSTER_TLS_KEY) go together`);
  }
  const clientCaFile = pick("tlsClientCa");
  if (clientCaFile !== "" && certFile === "") {
    throw new CliError(`client certificates (--tls-client-ca, MUSTER_TLS_CLIENT_CA) need TLS: give --tls-cert and --tls-key too`);
  }
  const tls = certFile === "" ? undefined : { certFile: resolve(certFile), keyFile: resolve(keyFile), clientCaFile: clientCaFile === "" ? undefined : resolve(clientCaFile) };
  const seconds = (key: "peerCheckSeconds" | "peerTimeoutSeconds" | "firstBytesSeconds", what: string, zero?: string) => {
    const value = Number(pick(key));
    if (!(value > 0 || (zero !== undefined && value === 0)) || value > 86_400) {
      throw new CliError(`${what} must be a number of seconds above 0 and at most a day${zero === undefined ? "" : `, or 0 ${zero}`} (got "${pick(key)}")`);
    }
    return value === 0 ? Number.POSITIVE_INFINITY : value * 1000;
  };
  const peerCheck = {
    intervalMs: seconds("peerCheckSeconds", "peer check (peerCheckSeconds, MUSTER_PEER_CHECK_SECONDS)", "to send no PINGs"),
    timeoutMs: seconds("peerTimeoutSeconds", "peer timeout (peerTimeoutSeconds, MUSTER_PEER_TIMEOUT_SECONDS)"),
    firstBytesMs: seconds("firstBytesSeconds", "first bytes limit (firstBytesSeconds, MUSTER_FIRST_BYTES_SECONDS)"),
  };
  const maxStreamsPerConnection = Number(pick("maxStreamsPerConnection"));
  if (!Number.isInteger(maxStreamsPerConnection) || maxStreamsPerConnection < 1 || maxStreamsPerConnection > 1_000_000) {
    throw new CliError(`streams per connection (maxStreamsPerConnection, MUSTER_MAX_STREAMS_PER_CONNECTION) must be a whole number from 1 to 1,000,000 (got "${pick("maxStreamsPerConnection")}")`);
  }
  const accessTokensFile = pick("accessTokensFile") === "" ? undefined : resolve(pick("accessTokensFile"));
  const metrics = switches[pick("metrics").toLowerCase()];
  if (metrics === undefined) throw new CliError(`metrics (--metrics, MUSTER_METRICS, "metrics") must be on or off (got "${pick("metrics")}")`);
  let dns: ServeConfig["dns"];
  if (pick("dnsAddr") !== "") {
    const ttlSeconds = Number(pick("dnsTtlSeconds"));
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > 86_400) throw new CliError(`DNS TTL (dnsTtlSeconds, MUSTER_DNS_TTL_SECONDS) must be a whole number of seconds from 0 to a day (got "${pick("dnsTtlSeconds")}")`);
    let domain: string;
    try {
      domain = checkDnsDomain(pick("dnsDomain"));
    } catch (error) {
      throw new CliError(`DNS domain (--dns-domain, MUSTER_DNS_DOMAIN, "dnsDomain") ${(error as Error).message}`);
    }
    dns = { ...addressSetting("the DNS address (--dns-addr, MUSTER_DNS_ADDR)", pick("dnsAddr")), ttlSeconds, domain };
  }
  return { ...address, dataDir: resolve(pick("dataDir")), logLevel: logLevel as LogLevel, historyLimit, massExpiryThreshold, idleMemoryReleaseSeconds, youngGenerationMiB, corsOrigins, tls, peerCheck, maxStreamsPerConnection, accessTokensFile, metrics, dns, follow: followSetting(pick) };
}

/** The leader to follow: an http or https URL, its token, CA file and client certificate only beside it. */
function followSetting(pick: (key: keyof ServeSettings) => string): ServeConfig["follow"] {
  const [leader, token, caFile, certFile, keyFile] = [pick("follow"), pick("followToken"), pick("followCa"), pick("followCert"), pick("followKey")];
  if (leader === "") {
    if (token !== "" || caFile !== "" || certFile !== "" || keyFile !== "") throw new CliError(`a leader's token, CA or client certificate (MUSTER_FOLLOW_TOKEN, --follow-ca, --follow-cert) needs a leader to follow: give --follow URL (MUSTER_FOLLOW) too`);
    return undefined;
  }
  if ((certFile === "") !== (keyFile === "")) {
    throw new CliError(`a client certificate for the leader needs its key: --follow-cert (MUSTER_FOLLOW_CERT) and --follow-key (MUSTER_FOLLOW_KEY) go together`);
  }
  let url: URL | undefined;
  try {
    url = new URL(leader);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    throw new CliError(`the leader to follow (--follow, MUSTER_FOLLOW, "follow") must be a registry's URL such as http://10.0.0.5:6878 (got "${leader}")`);
  }
  const client = certFile === "" ? undefined : { certFile: resolve(certFile), keyFile: resolve(keyFile) };
  return { leader: url.origin, token: token === "" ? undefined : token, caFile: caFile === "" ? undefined : resolve(caFile), client };
}

/** A host:port setting, or a one-line CliError naming it. */
function addressSetting(what: string, text: string): { host: string; port: number } {
  try {
    return parseHostPort(what, text);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
}
