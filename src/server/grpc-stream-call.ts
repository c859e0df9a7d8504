import http2 from "node:http2";
import { Code, type ConnectError } from "@connectrpc/connect";
import type { MethodCalls } from "./method-calls.js";

/**
 * The answer side of one gRPC call on a raw HTTP/2 stream: response headers
 * once, length-prefixed messages, then the status in trailers (or, for a call
 * that fails before any message, in a trailers-only response, as the gRPC
 * over HTTP/2 spec has it). Every method is safe to call after the client has
 * gone: it then does nothing.
 */
export class GrpcStreamCall {
  private headersSent = false;
  private statusSent = false;
  private trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    /** Echoed back: application/grpc or application/grpc+proto. */
    private readonly contentType: string,
    /** Told the status the call ends with, once; CANCELLED when the client goes first. */
    private readonly calls?: MethodCalls,
  ) {
    if (calls !== undefined) {
      stream.once("close", () => {
        if (!this.statusSent) calls.end(Code.Canceled);
      });
    }
  }

  /** True once the status has been sent (or given to HTTP/2 to send). */
  get finished(): boolean {
    return this.statusSent;
  }

  /** False once the client has gone or the status has been sent. */
  get open(): boolean {
    return !this.statusSent && !this.stream.destroyed && !this.stream.closed;
  }

  /** Sends one framed message and the OK status: a whole unary answer. */
  reply(frame: Buffer): void {
    if (!this.open) return;
    this.sendHeaders();
    this.statusSent = true;
    this.calls?.end(0);
    this.stream.end(frame);
  }

  /** Sends one framed message of a stream; false when the client is not keeping up. */
  write(frame: Buffer): boolean {
    if (!this.open) return false;
    this.sendHeaders();
    return this.stream.write(frame);
  }

  /** Resolves when the client has read enough to write again, or has gone. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
    });
  }

  /** Ends a stream with OK. */
  finish(): void {
    if (!this.open) return;
    this.sendHeaders();
    this.statusSent = true;
    this.calls?.end(0);
    this.stream.end();
  }

  /** Ends the call with an error status. */
  fail(error: ConnectError): void {
    if (!this.open) return;
    const status = { "grpc-status": String(error.code), "grpc-message": encodeGrpcMessage(error.rawMessage) };
    this.statusSent = true;
    this.calls?.end(error.code);
    if (this.headersSent) {
      this.trailers = status;
      this.stream.end();
    } else {
      this.stream.respond({ ":status": 200, "content-type": this.contentType, ...status }, { endStream: true });
    }
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond({ ":status": 200, "content-type": this.contentType }, { waitForTrailers: true });
    this.stream.once("wantTrailers", () => this.stream.sendTrailers(this.trailers));
  }
}

/**
 * grpc-message is percent-encoded UTF-8; printable ASCII other than % stays
 * as it is. A lone surrogate, which has no UTF-8, becomes U+FFFD.
 */
function encodeGrpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]+/gu, (run) => encodeURIComponent(run.replace(/\p{Cs}/gu, "\uFFFD")));
}
