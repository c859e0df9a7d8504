import type http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/*
 * Reading what a gRPC client sends the fast path: its deadline header and
 * its one request message.
 */

/**
 * Collects a unary request body and checks its one gRPC frame: not
 * compressed (no grpc-encoding was sent), of the length it declares, and no
 * larger than the limit Connect applies too.
 */
export function readRequest(stream: http2.ServerHttp2Stream, readMaxBytes: number, then: (error: ConnectError | undefined, message: Uint8Array) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  stream.on("data", (chunk: Buffer) => {
    if (refused) return;
    size += chunk.length;
    if (size > readMaxBytes + 5) {
      refused = true;
      then(new ConnectError(`request: the message is larger than the ${readMaxBytes} bytes the registry accepts`, Code.ResourceExhausted), new Uint8Array());
      return;
    }
    chunks.push(chunk);
  });
  stream.once("end", () => {
    if (refused) return;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const framing = body.length < 5 ? "is missing" : body[0] !== 0 ? "must not be compressed without grpc-encoding" : body.readUInt32BE(1) !== body.length - 5 ? "must be exactly one message of the length its prefix declares" : undefined;
    if (framing === undefined) then(undefined, body.subarray(5));
    else then(new ConnectError(`request: the gRPC message ${framing}`, Code.InvalidArgument), new Uint8Array());
  });
}

const timeoutUnits: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** The longest delay a Node timer takes: a longer one fires after 1 ms instead. */
export const longestTimerMs = 2 ** 31 - 1;

/**
 * grpc-timeout as milliseconds: undefined when absent, null when malformed
 * (Connect answers those). A deadline further off than a timer can hold
 * (about 24.8 days; the header allows 11,000 years) is taken as none, since
 * a timer set to it would end the call at once.
 */
export function parseTimeout(header: string | string[] | undefined): number | undefined | null {
  if (header === undefined) return undefined;
  const match = typeof header === "string" ? /^(\d{1,8})([HMSmun])$/.exec(header) : null;
  if (match === null) return null;
  const timeoutMs = Number(match[1]) * (timeoutUnits[match[2] as string] ?? Number.NaN);
  return timeoutMs > longestTimerMs ? undefined : timeoutMs;
}
