import { describe, expect, it } from "vitest";
import { grpcFrame } from "./support/raw-http2.js";
import { TestRegistry } from "./support/test-registry.js";

/** What one Connect-protocol Watch over HTTP/1.1 (JSON) brought before it ended or `waitMs` passed. */
interface ConnectWatch {
  readonly messages: number;
  /** The end-of-stream message, as sent; undefined while the stream stays open. */
  readonly end: { error?: { code?: string; message?: string } } | undefined;
  readonly endedAfterMs: number | undefined;
}

/**
 * A Watch read raw with fetch, so that no client-side timer ends it: how the
 * server keeps (or fails to keep) the deadline the request names.
 */
async function connectWatch(url: string, headers: Record<string, string>, waitMs: number): Promise<ConnectWatch> {
  const started = Date.now();
  const giveUp = new AbortController();
  const timer = setTimeout(() => giveUp.abort(), waitMs);
  // Connect's streaming envelope is gRPC's five-byte frame.
  const request = new Uint8Array(grpcFrame(Buffer.from("{}")));
  let messages = 0;
  let end: ConnectWatch["end"];
  let endedAfterMs: number | undefined;
  try {
    const response = await fetch(`${url}/muster.v1.RegistryService/Watch`, { method: "POST", headers: { "content-type": "application/connect+json", ...headers }, body: request, signal: giveUp.signal });
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error(`no body: HTTP ${response.status}`);
    let buffer = Buffer.alloc(0);
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      buffer = Buffer.concat([buffer, read.value]);
      while (buffer.length >= 5 && buffer.length >= 5 + buffer.readUInt32BE(1)) {
        const length = buffer.readUInt32BE(1);
        const message = JSON.parse(buffer.subarray(5, 5 + length).toString("utf8")) as ConnectWatch["end"];
        if (((buffer[0] ?? 0) & 2) === 0) messages++;
        else end = message;
        buffer = buffer.subarray(5 + length);
      }
    }
    endedAfterMs = Date.now() - started;
  } catch (error) {
    if (!giveUp.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
  }
  return { messages, end, endedAfterMs };
}

describe("deadlines on the calls Connect serves", () => {
  it("ends a Watch at its deadline with deadline_exceeded, not with a clean end of stream", async () => {
    const server = await TestRegistry.start();
    const watch = await connectWatch(server.url, { "connect-timeout-ms": "300" }, 5_000);
    expect([watch.messages, watch.end?.error?.code]).toEqual([1, "deadline_exceeded"]);
    expect(watch.endedAfterMs).toBeGreaterThanOrEqual(250);
    await expect.poll(() => server.registry.stats().watchers).toBe(0);
  });

  it("takes a deadline further off than a timer can hold as none, rather than ending the Watch at once", async () => {
    const server = await TestRegistry.start();
    // 9,999,999,999 ms is about 116 days; a Node timer set past about 24.8 days fires after 1 ms.
    const watch = await connectWatch(server.url, { "connect-timeout-ms": "9999999999" }, 500);
    expect(watch).toEqual({ messages: 1, end: undefined, endedAfterMs: undefined });
  });
});
