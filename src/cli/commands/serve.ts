import v8 from "node:v8";
import { Command } from "commander";
import { pino, type Logger } from "pino";
import { defaultExpiryGuardPolicy } from "../../domain/expiry-guard.js";
import { parseAccessTokens, type AccessTokens } from "../../server/access-tokens.js";
import { ListenError, startRegistryServer, type RunningRegistry, type TlsCredentials } from "../../server/registry-server.js";
import { StoreError } from "../../store/store-error.js";
import { CliError, readSettingFile } from "../cli-error.js";
import { currentHeapBytes, releaseMemoryWhenIdle } from "../idle-memory-release.js";
import { capYoungGeneration } from "../young-generation-cap.js";
import { followLoadWithMemory } from "../memory-follows-load.js";
import { afterFirstAnswer } from "../first-answer.js";
import type { RegistryClientOptions } from "../../client/registry-client.js";
import { LeaderLink } from "../leader-link.js";
import { logLevels, resolveServeConfig, settingsFromEnv, settingsFromFile, type LogLevel, type ServeConfig } from "../serve-config.js";

/** How long shutdown may take before the process exits regardless. */
const shutdownDeadlineMs = 10_000;

interface ServeFlags {
  addr?: string;
  dataDir?: string;
  logLevel?: string;
  corsOrigin?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  accessTokens?: string;
  metrics?: boolean;
  dnsAddr?: string;
  dnsDomain?: string;
  follow?: string;
  followCa?: string;
  followCert?: string;
  followKey?: string;
  config?: string;
}

/**
 * `muster serve`: runs the registry; what `npm start` runs. `servingWarm`
 * is called once the registry has answered its first call and before any
 * V8 flag is changed (the executable keeps its code cache then; default
 * nothing).
 */
export function serveCommand(servingWarm?: () => void): Command {
  return new Command("serve")
    .description("run the registry (flags beat MUSTER_* environment variables, which beat the config file)")
    .option("--addr <host:port>", "where to listen (MUSTER_ADDR; default 127.0.0.1:6878)")
    .option("--data-dir <dir>", "the LevelDB directory (MUSTER_DATA_DIR; default ./muster-data)")
    .option("--log-level <level>", `one of ${logLevels.join(", ")} (MUSTER_LOG_LEVEL; default info)`)
    .option("--cors-origin <origins>", 'web pages that may call the registry from a browser: comma-separated origins such as https://dash.example.com or https://*.example.com, or "*" (MUSTER_CORS_ORIGINS; default none)')
    .option("--tls-cert <file>", "serve TLS with this PEM certificate (chain after it) (MUSTER_TLS_CERT; default cleartext)")
    .option("--tls-key <file>", "the certificate's PEM private key (MUSTER_TLS_KEY)")
    .option("--tls-client-ca <file>", "mutual TLS: only clients with a certificate this PEM CA signed may call (MUSTER_TLS_CLIENT_CA; default none asked)")
    .option("--access-tokens <file>", 'require a bearer token: a file of lines "write <token>" or "read <token>" (MUSTER_ACCESS_TOKENS_FILE; default none, anyone may call)')
    .option("--dns-addr <host:port>", "also answer DNS there, UDP and TCP: <service>.service.muster A, AAAA and SRV (MUSTER_DNS_ADDR; default none)")
    .option("--dns-domain <domain>", "the domain DNS answers for, such as svc.example.internal (MUSTER_DNS_DOMAIN; default muster)")
    .option("--follow <url>", "be a follower of the registry at this URL: copy its changes, serve reads, send writes on to it; restart without it to promote (MUSTER_FOLLOW; token in MUSTER_FOLLOW_TOKEN; default none)")
    .option("--follow-ca <file>", "the PEM CA that signed the leader's TLS certificate, when not a public one (MUSTER_FOLLOW_CA)")
    .option("--follow-cert <file>", "the PEM client certificate to show a leader that asks for one (mutual TLS) (MUSTER_FOLLOW_CERT)")
    .option("--follow-key <file>", "its PEM private key (MUSTER_FOLLOW_KEY)")
    .option("--metrics", "serve Prometheus metrics at GET /metrics on the same port (MUSTER_METRICS=on; default off)")
    .option("--config <file>", 'a JSON file such as {"addr": "0.0.0.0:6878", "dataDir": "/var/lib/muster", "historyLimit": 10000, "massExpiryThreshold": 0.5, "idleMemoryReleaseSeconds": 5, "youngGenerationMiB": 16, "corsOrigins": ["https://dash.example.com"]} (MUSTER_CONFIG)')
    .addHelpText("after", "\nExamples:\n  $ muster serve\n  $ muster serve --addr 0.0.0.0:6878 --data-dir /var/lib/muster\n  $ muster serve --addr 0.0.0.0:6878 --tls-cert cert.pem --tls-key key.pem\n  $ MUSTER_LOG_LEVEL=debug muster serve --config muster.json\n")
    .action(async (flags: ServeFlags) => {
      const configFile = flags.config ?? process.env.MUSTER_CONFIG;
      const config = resolveServeConfig(
        { addr: flags.addr, dataDir: flags.dataDir, logLevel: flags.logLevel, corsOrigins: flags.corsOrigin, tlsCert: flags.tlsCert, tlsKey: flags.tlsKey, tlsClientCa: flags.tlsClientCa, accessTokensFile: flags.accessTokens, metrics: flags.metrics === true ? "on" : undefined, dnsAddr: flags.dnsAddr, dnsDomain: flags.dnsDomain, follow: flags.follow, followCa: flags.followCa, followCert: flags.followCert, followKey: flags.followKey },
        settingsFromEnv(process.env),
        configFile === undefined ? {} : settingsFromFile(configFile),
      );
      const logger = await createLogger(config.logLevel);
      const link = config.follow === undefined ? undefined : new LeaderLink(config.follow.leader, leaderClientOptions(config.follow), logger);
      const running = await startRegistryServer({ host: config.host, port: config.port, dataDir: config.dataDir, logger, cors: { allowedOrigins: config.corsOrigins }, tls: readTlsFiles(config.tls), peerCheck: config.peerCheck, maxStreamsPerConnection: config.maxStreamsPerConnection, accessTokens: readAccessTokens(config.accessTokensFile), metrics: config.metrics, dns: config.dns, following: link, registry: { historyLimit: config.historyLimit, expiryGuard: { ...defaultExpiryGuardPolicy, threshold: config.massExpiryThreshold } } }).catch((error: unknown) => {
        if (error instanceof StoreError || error instanceof ListenError) throw new CliError(error.message);
        throw error;
      });
      link?.start(running.registry);
      const servingHeapBytes = currentHeapBytes();
      const stopTuning = afterFirstAnswer(running.firstAnswered, () => tuneV8(config, logger, servingHeapBytes), { onFirstAnswer: servingWarm });
      // Only with something to reload: otherwise SIGHUP keeps its usual meaning (the terminal went away, stop).
      const reloadOnHangup = config.tls !== undefined || config.accessTokensFile !== undefined;
      const reloadFiles = () => reloadCredentials(running, config, logger);
      if (reloadOnHangup) process.on("SIGHUP", reloadFiles);
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          logger.info({ signal }, "shutting down");
          process.off("SIGHUP", reloadFiles);
          stopTuning();
          setTimeout(() => {
            logger.error(`shutdown took longer than ${shutdownDeadlineMs / 1000}s; exiting anyway`);
            process.exit(1);
          }, shutdownDeadlineMs).unref();
          (link?.stop() ?? Promise.resolve())
            .then(() => running.close())
            .then(resolve, (error: unknown) => {
              logger.error({ err: error }, "shutdown failed");
              process.exit(1);
            });
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}

/**
 * Reads the token file and the TLS certificate and key again, after a
 * rotation, and hands them to the serving registry. A file that cannot be
 * read or used is logged, and the registry keeps what it had.
 */
function reloadCredentials(running: RunningRegistry, config: ServeConfig, logger: Logger): void {
  try {
    const accessTokens = readAccessTokens(config.accessTokensFile);
    const { streamsEnded } = running.reload({ accessTokens, tls: readTlsFiles(config.tls) });
    logger.info({ tokens: accessTokens?.roles.size, tlsCert: config.tls?.certFile, streamsEnded }, "reloaded the token file and TLS certificate (SIGHUP)");
  } catch (error) {
    logger.error(`reload (SIGHUP) failed, the registry keeps its previous tokens and certificate: ${(error as Error).message}`);
  }
}

/** How a follower calls its leader: the files named in its settings, read. */
function leaderClientOptions(follow: NonNullable<ServeConfig["follow"]>): Omit<RegistryClientOptions, "baseUrl"> {
  return {
    token: follow.token,
    ca: follow.caFile === undefined ? undefined : readSettingFile(follow.caFile, "leader's CA (--follow-ca, MUSTER_FOLLOW_CA)"),
    cert: follow.client === undefined ? undefined : readSettingFile(follow.client.certFile, "client certificate for the leader (--follow-cert, MUSTER_FOLLOW_CERT)"),
    key: follow.client === undefined ? undefined : readSettingFile(follow.client.keyFile, "client certificate's key for the leader (--follow-key, MUSTER_FOLLOW_KEY)"),
  };
}

function readTlsFiles(files: ServeConfig["tls"]): TlsCredentials | undefined {
  if (files === undefined) return undefined;
  const credentials = { cert: readSettingFile(files.certFile, "TLS certificate (--tls-cert, MUSTER_TLS_CERT)"), key: readSettingFile(files.keyFile, "TLS key (--tls-key, MUSTER_TLS_KEY)") };
  return files.clientCaFile === undefined ? credentials : { ...credentials, clientCa: readSettingFile(files.clientCaFile, "client CA (--tls-client-ca, MUSTER_TLS_CLIENT_CA)") };
}

function readAccessTokens(path: string | undefined): AccessTokens | undefined {
  if (path === undefined) return undefined;
  const text = readSettingFile(path, "token file (--access-tokens, MUSTER_ACCESS_TOKENS_FILE)").toString("utf8");
  try {
    return parseAccessTokens(text);
  } catch (error) {
    throw new CliError(`${path}: ${(error as Error).message}`);
  }
}

/**
 * Sizes V8's heap to the load, keeps short-lived objects young and releases
 * memory when idle (counting growth from `servingHeapBytes`), as `config`
 * asks. Each changes V8's flags. Returns the function that stops them.
 */
function tuneV8(config: ServeConfig, logger: Logger, servingHeapBytes: number): () => void {
  keepShortLivedObjectsYoung();
  const stopSizingHeap = config.youngGenerationMiB > 0 ? sizeHeapToLoad(config.youngGenerationMiB * 1024 * 1024) : () => undefined;
  const stopReleasing = config.idleMemoryReleaseSeconds > 0 ? releaseMemoryWhenIdle(config.idleMemoryReleaseSeconds * 1000, logger, servingHeapBytes) : () => undefined;
  return () => {
    stopReleasing();
    stopSizingHeap();
  };
}

/** Caps the young generation at `busyYoungBytes`, and holds both generations smaller while the load is light. */
function sizeHeapToLoad(busyYoungBytes: number): () => void {
  const cap = capYoungGeneration(busyYoungBytes);
  const stopFollowing = followLoadWithMemory(cap, busyYoungBytes);
  return () => {
    stopFollowing();
    cap.stop();
  };
}

/**
 * Turns off V8's allocation-site pretenuring. A burst of calls (thousands
 * of registrations in flight at once) makes V8 decide that the request
 * path's objects live long and allocate them straight into the old
 * generation; after the burst they die young there and, through their stale
 * pointers, keep young objects alive: each scavenge then promoted about
 * 1.3 MB instead of 0.25 MB. After 10,000 registrations, Discover p99 at
 * 2,000 req/s went from 6.7-24 ms to 3.0-3.2 ms, with no throughput lost
 * (BENCHMARKS.md, "Garbage collection"). V8 reads the flag at each
 * collection, so it takes effect now; it waits for the server's first
 * answer (`afterFirstAnswer`) because changing V8's flags makes Node compile
 * the built-in modules it loads afterwards without their code cache (about
 * 20 ms of start-up), and makes V8 reject a code cache of ours made after it.
 */
function keepShortLivedObjectsYoung(): void {
  v8.setFlagsFromString("--no-allocation-site-pretenuring");
}

/** JSON logs, or readable ones when a person is watching the terminal (the formatter loads only then). */
async function createLogger(level: LogLevel): Promise<Logger> {
  const options = { name: "muster", level };
  if (!process.stdout.isTTY) return pino(options);
  const { default: pretty } = await import("pino-pretty");
  return pino(options, pretty({ colorize: true, ignore: "pid,hostname,name", translateTime: "HH:MM:ss.l" }));
}
