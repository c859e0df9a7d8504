// An agent: serves HTTP, registers itself with muster, and stays registered
// (heartbeats, re-registers, rides out registry restarts) until Ctrl-C, or the
// SIGTERM that docker stop, systemd and Kubernetes send: then it leaves at once
// instead of lingering in discovery until its ttl runs out.
//   npm start                      # in another terminal
//   node examples/agent.mjs
import { createServer } from "node:http";
import { createRegistryClient, RegistryAgent } from "muster";

const registry = process.env.MUSTER_REGISTRY ?? "http://127.0.0.1:6878";
const server = createServer((_request, response) => response.end("hello from an agent\n"));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address();

const agent = new RegistryAgent(
  createRegistryClient({ baseUrl: registry }),
  { service: "hello", address: `127.0.0.1:${port}`, version: "1.0.0", labels: { example: "agent" }, ttl: { seconds: 5n, nanos: 0 } },
  { onStateChange: ({ state, instance, error }) => console.log(`agent ${state}${instance ? ` as hello/${instance.id}` : ""}${error ? `: ${error.rawMessage}` : ""}`) },
);

const leave = async () => {
  await agent.close();
  server.close();
  console.log("deregistered; bye");
};
process.once("SIGINT", leave);
process.once("SIGTERM", leave);
