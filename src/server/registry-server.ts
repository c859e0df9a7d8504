import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { pino } from "pino";
import { Registry } from "../domain/registry.js";
import { LevelStore } from "../store/level-store.js";
import type { RegistryServerOptions, RunningRegistry } from "./registry-server-types.js";
import { file_grpc_health_v1_health, Health } from "../../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection, ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_muster_v1_registry, RegistryService } from "../../gen/muster/v1/registry_pb.js";
import { AccessGuard, accessInterceptor } from "./access-guard.js";
import type { AccessTokens } from "./access-tokens.js";
import { peerSocketKey, type PeerSocket } from "./client-certificates.js";
import { corsLayer } from "./cors.js";
import { countingInterceptor } from "./counting-interceptor.js";
import { DualProtocolServer, type DualHandler } from "./dual-protocol-server.js";
import { answerDnsQuery } from "./dns-answers.js";
import { checkDnsDomain, defaultDnsDomain } from "./dns-names.js";
import { startDnsServer, type DnsServer } from "./dns-server.js";
import { explainListen } from "./listen-error.js";
import { checkTlsCredentials, type TlsCredentials } from "./tls-credentials.js";
import { errorInterceptor } from "./error-interceptor.js";
import { grpcFastPath } from "./grpc-fast-path.js";
import { healthServiceImpl } from "./health-service.js";
import { registryMetrics } from "./metrics.js";
import { metricsLayer } from "./metrics-endpoint.js";
import { prometheusTargetsLayer } from "./prometheus-targets.js";
import { uiLayer } from "./ui-endpoint.js";
import { reflectionServices } from "./reflection-service.js";
import { registryLogHooks } from "./registry-log-hooks.js";
import { registryServiceImpl } from "./registry-service.js";
import { farDeadlinesLayer } from "./far-deadlines.js";

export type { RegistryServerOptions, ReloadOutcome, RunningRegistry } from "./registry-server-types.js";
export type { TlsCredentials } from "./tls-credentials.js";
export { ListenError, type ListenErrorCode } from "./listen-error.js";

/**
 * Opens the data directory, loads the registry and serves gRPC, gRPC-Web
 * and Connect on one port. Fails fast, with a sentence a person can act on,
 * when the port is busy or the directory is locked or damaged.
 */
export async function startRegistryServer(options: RegistryServerOptions): Promise<RunningRegistry> {
  const logger = options.logger ?? pino({ level: "silent" });
  const host = options.host ?? "127.0.0.1";
  if (options.tls !== undefined) checkTlsCredentials(options.tls);
  const dnsDomain = checkDnsDomain(options.dns?.domain ?? defaultDnsDomain);
  const services = [RegistryService, Health, ServerReflection, ServerReflectionV1alpha];
  const following = options.following;
  // Made first, to be told of commits from the first; read only once serving.
  const metrics = options.metrics === true ? await registryMetrics(() => registry.stats(), options.dataDir, services.flatMap((service) => service.methods), following === undefined ? undefined : () => following.state) : undefined;
  const store = await LevelStore.open(options.dataDir);
  let registry: Registry;
  try {
    registry = await Registry.open(store, { ...registryLogHooks(logger), onCommitted: metrics?.commitObserved, ...options.registry, followerOf: following?.leader });
  } catch (error) {
    await store.close();
    throw error;
  }
  const readMaxBytes = options.readMaxBytes ?? 1024 * 1024;
  const clientCertificates = options.tls?.clientCa !== undefined;
  const access = options.accessTokens === undefined && !clientCertificates ? undefined : new AccessGuard(options.accessTokens, clientCertificates);
  const registryImpl = registryServiceImpl(registry, { dataDir: options.dataDir, startedAt: Date.now(), following: options.following });
  const healthImpl = healthServiceImpl(registry);
  const reflection = reflectionServices([file_muster_v1_registry, file_grpc_health_v1_health, file_grpc_reflection_v1_reflection, file_grpc_reflection_v1alpha_reflection]);
  // What the port serves besides RPCs, each in front of the next: the dashboard, Prometheus' targets and metrics, then CORS and far-off deadlines around Connect.
  const layers = [uiLayer(), prometheusTargetsLayer(registry, access), ...(metrics === undefined ? [] : [metricsLayer(metrics, access)]), corsLayer(options.cors ?? { allowedOrigins: [] }), farDeadlinesLayer];
  const server = new DualProtocolServer(
    layers.reduceRight<DualHandler>(
      (inner, layer) => layer(inner),
      connectNodeAdapter({
        routes: (router) =>
          router
            .service(RegistryService, registryImpl)
            .service(Health, healthImpl)
            .service(ServerReflection, reflection.v1)
            .service(ServerReflectionV1alpha, reflection.v1alpha),
        interceptors: [...(metrics === undefined ? [] : [countingInterceptor(metrics.callsOf)]), errorInterceptor(logger), ...(access === undefined ? [] : [accessInterceptor(access)])],
        readMaxBytes,
        contextValues: clientCertificates ? (request) => createContextValues().set(peerSocketKey, request.socket as PeerSocket) : undefined,
        // Connect reads around unknown JSON keys and enum names by default: a typo'd "ttll" would register with the default ttl, and a heartbeat's misspelled status would read as HEALTHY.
        jsonOptions: { ignoreUnknownFields: false },
      }),
    ),
    grpcFastPath([{ service: RegistryService, impl: registryImpl }, { service: Health, impl: healthImpl }], {
      logger,
      readMaxBytes,
      access,
      callsOf: metrics?.callsOf,
    }),
    options.peerCheck,
    options.tls,
    options.maxStreamsPerConnection,
  );
  let port: number;
  let dns: DnsServer | undefined;
  const dnsAddress = options.dns;
  try {
    port = await explainListen(`listen on ${host}:${options.port ?? 6878}`, "MUSTER_ADDR", () => server.listen(host, options.port ?? 6878));
    if (dnsAddress !== undefined) {
      dns = await explainListen(`answer DNS on ${dnsAddress.host}:${dnsAddress.port}`, "MUSTER_DNS_ADDR", () =>
        startDnsServer(dnsAddress.host, dnsAddress.port, {
          answer: (query) => answerDnsQuery(query, registry, { domain: dnsDomain, ttlSeconds: dnsAddress.ttlSeconds ?? 0 }),
          onError: (error) => logger.error({ err: error }, "unexpected error answering DNS"),
          onReplied: metrics?.dnsReplied,
        }),
      );
    }
  } catch (error) {
    server.stopAccepting();
    await registry.close();
    await store.close();
    throw error;
  }
  const hostPort = (name: string, number: number) => `${name.includes(":") ? `[${name}]` : name}:${number}`;
  const url = `${options.tls === undefined ? "http" : "https"}://${hostPort(host, port)}`;
  const { revision, instances } = registry.stats();
  logger.info({ url, dashboard: `${url}/ui`, dataDir: options.dataDir, revision, instances, ...(dns === undefined ? {} : { dns: hostPort(dnsAddress?.host ?? host, dns.port) }) }, "muster is serving");

  let closing: Promise<void> | undefined;
  const close = async () => {
    await dns?.close();
    server.stopAccepting();
    await registry.close();
    await server.drain(options.shutdownGraceMs ?? 5000);
    await store.close();
    logger.info("muster stopped");
  };
  const reload = (update: { readonly accessTokens?: AccessTokens; readonly tls?: TlsCredentials }) => {
    if ((update.accessTokens !== undefined && options.accessTokens === undefined) || (update.tls !== undefined && options.tls === undefined) || (update.tls !== undefined && (update.tls.clientCa !== undefined) !== clientCertificates)) {
      throw new TypeError("reload replaces only the access tokens, TLS certificate and client CA the registry was started with");
    }
    if (update.tls !== undefined) {
      checkTlsCredentials(update.tls);
      server.useCredentials(update.tls);
    }
    return { streamsEnded: update.accessTokens !== undefined && access !== undefined ? access.replace(update.accessTokens) : 0 };
  };
  return { url, port, dnsPort: dns?.port, registry, firstAnswered: server.firstAnswered, close: () => (closing ??= close()), reload };
}
