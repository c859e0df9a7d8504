import net from "node:net";
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { grpcClient } from "./support/clients.js";
import { MusterProcess } from "./support/registry-process.js";
import { tempDataDir, TestRegistry } from "./support/test-registry.js";
import { WatchReader } from "./support/watch-reader.js";

function occupyPort(): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() });
    });
  });
}

function expectOneLineFailure(exit: { code: number | null; stderr: string }, text: string): void {
  expect(exit.code).toBe(1);
  const lines = exit.stderr.trim().split("\n");
  expect(lines, exit.stderr).toHaveLength(1);
  expect(lines[0]).toContain(text);
}

describe("serving", () => {
  it("fails at once, in one line, when the port is busy", async () => {
    const busy = await occupyPort();
    try {
      const exit = await MusterProcess.serve({ MUSTER_ADDR: `127.0.0.1:${busy.port}`, MUSTER_DATA_DIR: await tempDataDir() }).exited;
      expectOneLineFailure(exit, `cannot listen on 127.0.0.1:${busy.port}: the address is already in use`);
    } finally {
      busy.close();
    }
  });

  it("fails at once, in one line, when another muster holds the data directory", async () => {
    const holder = await TestRegistry.start();
    const exit = await MusterProcess.serve({ MUSTER_DATA_DIR: holder.dataDir }).exited;
    expectOneLineFailure(exit, `data directory ${holder.dataDir} is in use by another muster process`);
  });

  it("fails at once, in one line, on a malformed MUSTER_ADDR", async () => {
    const exit = await MusterProcess.serve({ MUSTER_ADDR: "localhost", MUSTER_DATA_DIR: await tempDataDir() }).exited;
    expectOneLineFailure(exit, "the listen address (--addr, MUSTER_ADDR) must be host:port");
  });

  it("shuts down cleanly on SIGTERM: streams end with UNAVAILABLE, data is kept", async () => {
    const dataDir = await tempDataDir();
    const running = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    const client = grpcClient(await running.ready());
    await client.register({ instance: { service: "a", id: "1", address: "10.0.0.1:80" } });
    const watch = new WatchReader(client.watch({}));
    await watch.next();
    const exit = running.kill("SIGTERM");
    const ended = await watch.next().catch((e: unknown) => ConnectError.from(e));
    expect(ended).toMatchObject({ code: Code.Unavailable });
    expect((await exit).code).toBe(0);
    expect((await exit).stdout).toContain("muster stopped");

    const again = MusterProcess.serve({ MUSTER_DATA_DIR: dataDir });
    try {
      const found = await grpcClient(await again.ready()).discover({});
      expect(found.instances.map((i) => i.id)).toEqual(["1"]);
    } finally {
      expect((await again.kill("SIGINT")).code).toBe(0);
    }
  });

  it("survives garbage bytes, broken HTTP/2 frames and aborted requests", async () => {
    const server = await TestRegistry.start();
    const { port } = new URL(server.url);
    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(Number(port), "127.0.0.1", () => socket.end(bytes));
        socket.on("error", () => resolve());
        socket.on("close", () => resolve());
        socket.resume();
      });
    await send(Buffer.from("\x00\x01\x02garbage\r\n\r\n"));
    await send(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x09\xff\x00\x00\x00\x01garbage"));
    await send(Buffer.from("POST /muster.v1.RegistryService/Register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"instance\":"));
    await send(Buffer.from("POST /muster.v1.RegistryService/Register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{]]]}"));
    const session = http2.connect(server.url);
    const request = session.request({ ":method": "POST", ":path": "/muster.v1.RegistryService/Register", "content-type": "application/grpc" });
    request.on("error", () => undefined);
    request.end(Buffer.from([0, 0, 0, 0, 50, 1, 2, 3]));
    await new Promise((resolve) => request.on("close", resolve));
    session.close();

    const client = server.client();
    const { revision } = await client.register({ instance: { service: "a", id: "1", address: "10.0.0.1:80" } });
    expect(revision).toBe(1n);
  });

  it("answers plain HTTP/1.1 JSON, as curl sends it", async () => {
    const server = await TestRegistry.start();
    const response = await fetch(`${server.url}/muster.v1.RegistryService/Register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ instance: { service: "web", address: "10.0.0.1:80", ttl: "30s" } }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { revision: string; instance: { id: string; ttl: string } };
    expect(body.revision).toBe("1");
    expect(body.instance.ttl).toBe("30s");
    expect(body.instance.id).toMatch(/^[0-9a-f-]{36}$/);
    const bad = await fetch(`${server.url}/muster.v1.RegistryService/Register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ instance: { service: "web", address: "10.0.0.1:99999" } }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("instance.address") as string });
  });
});
