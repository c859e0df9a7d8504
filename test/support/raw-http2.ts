import http2 from "node:http2";

/** What came back on one raw HTTP/2 request: status, gRPC status and message, and the body. */
export interface RawAnswer {
  status: string;
  grpcStatus: string;
  /** grpc-message, percent-decoded, from headers or trailers. */
  grpcMessage: string;
  body: Buffer;
}

/**
 * One POST over an HTTP/2 session with exactly the headers and bytes given,
 * for what well-behaved clients never send: garbage bodies, broken gRPC
 * frames, odd content types, deadlines no client library would set.
 */
export function rawHttp2Post(session: http2.ClientHttp2Session, path: string, contentType: string, body: Uint8Array, headers: http2.OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": contentType, te: "trailers", ...headers });
    const answer: RawAnswer = { status: "", grpcStatus: "", grpcMessage: "", body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const read = (headers: http2.IncomingHttpHeaders) => {
      answer.grpcStatus ||= String(headers["grpc-status"] ?? "");
      answer.grpcMessage ||= decodeURIComponent(String(headers["grpc-message"] ?? ""));
    };
    stream.on("response", (headers) => {
      answer.status = String(headers[":status"]);
      read(headers);
    });
    stream.on("trailers", read);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("close", () => resolve({ ...answer, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    stream.end(body);
  });
}

/** A message with gRPC's five-byte prefix; `flags` 1 claims it is compressed. */
export function grpcFrame(message: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame[0] = flags;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}
