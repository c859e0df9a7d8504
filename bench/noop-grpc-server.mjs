// The yardstick: a @grpc/grpc-js server whose handlers do nothing, answering
// the registry's unary methods with an empty message, or with the bytes of
// the file named as its argument. Prints its port.
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";

const raw = (bytes) => bytes;
const methods = ["Register", "Heartbeat", "Discover"];
const service = Object.fromEntries(
  methods.map((name) => [name, { path: `/muster.v1.RegistryService/${name}`, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw }]),
);
const answer = process.argv[2] === undefined ? Buffer.alloc(0) : readFileSync(process.argv[2]);
const server = new grpc.Server();
server.addService(service, Object.fromEntries(methods.map((name) => [name, (_call, callback) => callback(null, answer)])));
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${port}\n`);
});
