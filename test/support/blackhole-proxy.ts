import { createConnection, createServer, type Socket } from "node:net";
import { onTestFinished } from "vitest";

/**
 * A TCP proxy in front of a registry that can make the connections open
 * through it go silent without closing them: what a network partition, or
 * a registry host that froze or lost power, looks like to a client. Bytes
 * still arrive and are dropped, nothing is answered, no FIN or RST is sent.
 * Connections opened afterwards reach the registry again, as they would
 * after a failover to a healthy path. Closed when the test finishes.
 */
export interface BlackholeProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Silences every connection open now; later ones go through. */
  blackhole(): void;
  /** How many connections clients have opened through the proxy. */
  readonly connections: number;
}

export async function startBlackholeProxy(target: string): Promise<BlackholeProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<{ client: Socket; upstream: Socket }>();
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = createConnection({ host: hostname, port: Number(port) });
    const pair = { client, upstream };
    open.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const forget = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", forget).on("close", forget);
    upstream.on("error", forget).on("close", forget);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no TCP address");
  onTestFinished(async () => {
    for (const { client, upstream } of open) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    url: `http://127.0.0.1:${address.port}`,
    blackhole() {
      for (const { client, upstream } of open) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Keep reading, so neither side sees back-pressure: the bytes just go nowhere.
        client.resume();
        upstream.resume();
      }
    },
    get connections() {
      return connections;
    },
  };
}
