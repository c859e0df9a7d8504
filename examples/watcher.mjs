// A watcher: prints every change to a service as it happens, and the view it
// keeps (equal to Discover), resuming by itself if the registry restarts.
//   node examples/watcher.mjs [service]
import { createRegistryClient, EventType, HealthStatus, RegistryWatcher } from "muster";

const registry = process.env.MUSTER_REGISTRY ?? "http://127.0.0.1:6878";
const service = process.argv[2] ?? "hello";
const watcher = new RegistryWatcher(createRegistryClient({ baseUrl: registry }), { service }, {
  onRetry: (error, delayMs) => console.log(`stream broke (${error.rawMessage}); resuming from revision ${watcher.revision} in ${Math.round(delayMs)}ms`),
});
process.once("SIGINT", () => watcher.close());
process.once("SIGTERM", () => watcher.close());

for await (const update of watcher) {
  for (const { type, instance, removed } of update.events) {
    const what = update.snapshot ? "CURRENT" : EventType[type];
    console.log(`${what} ${instance.service}/${instance.id} ${HealthStatus[instance.health]}${removed ? " (left the view)" : ""}`);
  }
  console.log(`view at revision ${update.revision}: ${[...watcher.view.values()].map((i) => i.address).join(", ") || "(empty)"}`);
}
