import * as grpc from "@grpc/grpc-js";
import { onTestFinished } from "vitest";

const identity = (bytes: Buffer) => bytes;

/** A one-method service whose answer is the name of the backend that served it. */
const whoService: grpc.ServiceDefinition = {
  who: { path: "/test.Echo/Who", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: "who" },
};

/** A grpc-js client of the echo service, for channels whose target is `muster://...`. */
export const EchoClient = grpc.makeGenericClientConstructor(whoService, "Echo");

/** A grpc-js server answering with `name`, on a free port, shut down when the test finishes; its host:port. */
export async function echoBackend(name: string): Promise<string> {
  const server = new grpc.Server();
  server.addService(whoService, { who: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(name)) });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  onTestFinished(() => server.forceShutdown());
  return `127.0.0.1:${port}`;
}

/** The name of the backend that answered one call. */
export function who(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as { who(request: Buffer, callback: (error: Error | null, reply?: Buffer) => void): void }).who(Buffer.alloc(0), (error, reply) =>
      error === null && reply !== undefined ? resolve(reply.toString()) : reject(error ?? new Error("no reply")),
    );
  });
}
