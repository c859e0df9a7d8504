import { createConnection, createServer, type Socket } from "node:net";
import { onTestFinished } from "vitest";

/**
 * A TCP proxy in front of a registry that can make the connections open
 * through it go silent without closing them: what a network partition, or
 * a host that froze or lost power, looks like to the other side. Bytes
 * still arrive and are dropped, nothing is answered, and a close on one
 * side is not passed to the other.
 * Connections opened afterwards reach the registry again, as they would
 * after a failover to a healthy path. With `lagMs`, everything the registry
 * sends arrives that much later, as over a slow link. Closed when the test
 * finishes.
 */
export interface BlackholeProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Silences every connection open now; later ones go through. */
  blackhole(): void;
  /** How many connections clients have opened through the proxy. */
  readonly connections: number;
}

export async function startBlackholeProxy(target: string, { lagMs = 0 } = {}): Promise<BlackholeProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<{ client: Socket; upstream: Socket; silenced: boolean }>();
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = createConnection({ host: hostname, port: Number(port) });
    const pair = { client, upstream, silenced: false };
    open.add(pair);
    client.pipe(upstream);
    if (lagMs === 0) upstream.pipe(client);
    else upstream.on("data", (chunk: Buffer) => setTimeout(() => pair.silenced || client.destroyed || client.write(chunk), lagMs));
    // A close crosses the proxy only while the path is up: across a partition neither side hears of it.
    const closed = (side: Socket, other: Socket) => () => {
      side.destroy();
      if (!pair.silenced) other.destroy();
      if (client.destroyed && upstream.destroyed) open.delete(pair);
    };
    client.on("error", closed(client, upstream)).on("close", closed(client, upstream));
    upstream.on("error", closed(upstream, client)).on("close", closed(upstream, client));
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
      for (const pair of open) {
        const { client, upstream } = pair;
        pair.silenced = true;
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
