import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { RegistryService } from "../../gen/muster/v1/registry_pb.js";

/** A typed client for muster.v1.RegistryService. */
export type RegistryClient = Client<typeof RegistryService>;

/** The wire protocols the registry's one port speaks. */
export type RegistryProtocol = "grpc" | "connect" | "grpc-web";

export interface RegistryClientOptions {
  /** Such as http://127.0.0.1:6878 */
  readonly baseUrl: string;
  /** Default "grpc" (HTTP/2). "connect" and "grpc-web" use HTTP/2 too unless httpVersion says "1.1". */
  readonly protocol?: RegistryProtocol;
  /** Default "2". */
  readonly httpVersion?: "1.1" | "2";
  readonly interceptors?: Interceptor[];
}

/** The default registry address, where `muster serve` listens. */
export const defaultRegistryUrl = "http://127.0.0.1:6878";

/**
 * Creates a client over the protocol of your choice. Every protocol reaches
 * the same port; gRPC is the default because every language speaks it.
 */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const { baseUrl, interceptors = [] } = options;
  const httpVersion = options.httpVersion ?? "2";
  switch (options.protocol ?? "grpc") {
    case "grpc":
      return createClient(RegistryService, createGrpcTransport({ baseUrl, interceptors }));
    case "connect":
      return createClient(RegistryService, createConnectTransport({ baseUrl, httpVersion, interceptors, useBinaryFormat: true }));
    case "grpc-web":
      return createClient(RegistryService, createGrpcWebTransport({ baseUrl, httpVersion, interceptors }));
  }
}
