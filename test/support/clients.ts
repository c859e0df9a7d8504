import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { RegistryService } from "../../gen/muster/v1/registry_pb.js";

export type RegistryClient = Client<typeof RegistryService>;

/** The filter fields Discover and Watch share, for tests that send one filter to both. */
export interface FilterInit {
  service?: string;
  tags?: string[];
  selector?: string;
  version?: string;
  capability?: string;
  includeUnhealthy?: boolean;
}

/** Every way a Connect-ES client can reach the one port. */
export const transports: Record<string, (baseUrl: string) => Transport> = {
  "Connect JSON over HTTP/1.1": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }),
  "Connect binary over HTTP/2": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
  "gRPC over HTTP/2": (baseUrl) => createGrpcTransport({ baseUrl }),
  "gRPC-Web over HTTP/1.1": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

/** The remaining protocol, encoding and HTTP version combinations, for limits that must hold on all. */
export const moreTransports: Record<string, (baseUrl: string) => Transport> = {
  "Connect binary over HTTP/1.1": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
  "Connect JSON over HTTP/2": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false }),
  "gRPC-Web over HTTP/2": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
  // These two are gRPC that the server's fast path leaves to Connect.
  "gRPC JSON over HTTP/2": (baseUrl) => createGrpcTransport({ baseUrl, useBinaryFormat: false }),
  "gRPC gzip over HTTP/2": (baseUrl) => createGrpcTransport({ baseUrl, sendCompression: compressionGzip, acceptCompression: [compressionGzip] }),
};

export function grpcClient(baseUrl: string): RegistryClient {
  return createClient(RegistryService, createGrpcTransport({ baseUrl }));
}
