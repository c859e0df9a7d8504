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

/** The backends that answer 20 calls in a row, once that set is `expected` (the channel follows the registry's Watch), within 5 s. */
export async function answeredBy(channel: grpc.Client, expected: readonly string[]): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const seen = new Set<string>();
    for (let call = 0; call < 20; call++) seen.add(await who(channel));
    const names = [...seen].sort();
    if (names.join() === expected.join() || Date.now() > deadline) return names;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
