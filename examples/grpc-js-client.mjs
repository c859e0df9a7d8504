// A @grpc/grpc-js client that finds its servers through muster: two greeter
// backends register themselves, and a client made for muster:///greeter
// spreads calls over the healthy ones, following health changes live.
//   node examples/grpc-js-client.mjs
import * as grpc from "@grpc/grpc-js";
import { createRegistryClient, RegistryAgent } from "muster";
import { registerMusterResolver } from "muster/grpc-js";

const registry = process.env.MUSTER_REGISTRY ?? "http://127.0.0.1:6878";
const bytes = (buffer) => buffer;
const greeter = { greet: { path: "/example.Greeter/Greet", requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes } };

async function startBackend(name) {
  const server = new grpc.Server();
  server.addService(greeter, { greet: (_call, callback) => callback(null, Buffer.from(`hello from ${name}`)) });
  const port = await new Promise((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  const agent = new RegistryAgent(createRegistryClient({ baseUrl: registry }), { service: "greeter", id: name, address: `127.0.0.1:${port}`, ttl: { seconds: 2n, nanos: 0 } });
  await agent.until("registered");
  return { stop: async () => { await agent.close(); server.forceShutdown(); } };
}

const backends = [await startBackend("alpha"), await startBackend("beta")];
registerMusterResolver({ registry });
const Greeter = grpc.makeGenericClientConstructor(greeter, "Greeter");
const client = new Greeter("muster:///greeter", grpc.credentials.createInsecure());
const greet = () => new Promise((resolve, reject) => client.greet(Buffer.alloc(0), (error, reply) => (error ? reject(error) : resolve(reply.toString()))));

for (let i = 0; i < 6; i++) console.log(await greet());
client.close();
for (const backend of backends) await backend.stop();
