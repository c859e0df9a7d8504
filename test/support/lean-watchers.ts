import http2 from "node:http2";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { WatchRequestSchema, WatchResponseSchema, type WatchResponse } from "../../gen/muster/v1/registry_pb.js";

/**
 * Many gRPC Watch streams over a few HTTP/2 connections, read straight off the
 * streams: frames are cut by their length prefix and decoded, nothing more.
 * One Node process running 1,000 full Connect clients spends more per
 * message than the registry does, so this is the load generator for
 * delivery latency, as h2load is for unary calls. It keeps nothing of what
 * it reads, so a test can weigh what the server keeps.
 *
 * Each message's arrival time is taken as its bytes are read, and decoding
 * waits until the read's messages are all in: decoded as they came, the
 * 1,000th watcher's time included the decoding of the 999 messages before it
 * in this one process, about 5 ms at the median (BENCHMARKS.md, "Session 22").
 */
export function openLeanWatchers(url: string, request: MessageInitShape<typeof WatchRequestSchema>, watchers: number, connections: number, onMessage: (message: WatchResponse, receivedAt: number) => void): { close: () => void } {
  const sessions = Array.from({ length: connections }, () => http2.connect(url));
  const body = toBinary(WatchRequestSchema, create(WatchRequestSchema, request));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  let unread: [Uint8Array, number][] = [];
  const decodeUnread = () => {
    const read = unread;
    unread = [];
    for (const [bytes, receivedAt] of read) onMessage(fromBinary(WatchResponseSchema, bytes), receivedAt);
  };
  for (let w = 0; w < watchers; w++) {
    const session = sessions[w % connections] as http2.ClientHttp2Session;
    const stream = session.request({ ":method": "POST", ":path": "/muster.v1.RegistryService/Watch", "content-type": "application/grpc", te: "trailers" });
    let pending: Buffer = Buffer.alloc(0);
    stream.on("data", (chunk: Buffer) => {
      const receivedAt = performance.now();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const end = 5 + pending.readUInt32BE(1);
        if (unread.length === 0) setImmediate(decodeUnread);
        unread.push([pending.subarray(5, end), receivedAt]);
        pending = pending.subarray(end);
      }
    });
    stream.on("error", () => undefined);
    stream.end(frame);
  }
  return { close: () => sessions.forEach((session) => session.destroy()) };
}
