import type http2 from "node:http2";
import { fromBinary, type DescMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { AccessGuard } from "./access-guard.js";
import type { PeerSocket } from "./client-certificates.js";
import { toConnectError } from "./error-interceptor.js";
import { parseTimeout, readRequest } from "./grpc-request.js";
import { GrpcStreamCall } from "./grpc-stream-call.js";
import type { MethodCalls } from "./method-calls.js";
import type { RegistryMetrics } from "./metrics.js";
import { grpcFrameOf } from "./reused-encoding.js";

/** Takes an HTTP/2 stream and answers it, or returns false to leave it to Connect. */
export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

/** A service and the implementation that Connect serves too. */
export interface FastPathService {
  readonly service: DescService;
  readonly impl: object;
}

type Handler = (request: Message, context: HandlerContext) => unknown;

interface Route {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly handler: Handler;
  /** Counted for /metrics, when it is served. */
  readonly calls: MethodCalls | undefined;
}

/**
 * Serves the common case of gRPC straight from HTTP/2 streams: binary
 * protobuf, no compression, unary and server-streaming methods. It calls the
 * same service implementations Connect serves, so nothing about an RPC is
 * written twice, and it skips the per-call layers (compat request objects,
 * async-iterable plumbing, an abort signal per call) that made connect-node
 * five times slower than @grpc/grpc-js. Anything else (gRPC with JSON or
 * compression, gRPC-Web, Connect, reflection's bidi stream) is left to
 * Connect on the same port.
 */
export function grpcFastPath(
  services: readonly FastPathService[],
  options: { logger: Logger; readMaxBytes: number; access?: AccessGuard | undefined; callsOf?: RegistryMetrics["callsOf"] | undefined },
): StreamHandler {
  const routes = new Map<string, Route>();
  for (const { service, impl } of services) {
    for (const method of service.methods) {
      const handler = (impl as Record<string, Handler | undefined>)[method.localName];
      if (handler === undefined || (method.methodKind !== "unary" && method.methodKind !== "server_streaming")) continue;
      routes.set(`/${service.typeName}/${method.name}`, { service, method, handler: handler.bind(impl), calls: options.callsOf?.(method) });
    }
  }
  return (stream, headers) => {
    const route = routes.get(headers[":path"] ?? "");
    const contentType = headers["content-type"];
    const encoding = headers["grpc-encoding"];
    if (route === undefined || headers[":method"] !== "POST" || (contentType !== "application/grpc" && contentType !== "application/grpc+proto")) return false;
    if (encoding !== undefined && encoding !== "identity") return false;
    const timeoutMs = parseTimeout(headers["grpc-timeout"]);
    if (timeoutMs === null) return false;
    // A client's reset arrives as an error event; the close that follows does the cleanup.
    stream.on("error", () => undefined);
    route.calls?.start();
    const call = new GrpcStreamCall(stream, contentType, route.calls);
    const refused = options.access?.refusal(headers[":path"] ?? "", headers.authorization, options.access.clientCertificates ? (stream.session?.socket as PeerSocket | undefined) : undefined);
    if (refused !== undefined) {
      call.fail(refused);
      // The request is not read, but drained, so the stream can end and close.
      stream.resume();
      return true;
    }
    readRequest(stream, options.readMaxBytes, (error, body) => {
      if (error !== undefined) call.fail(error);
      else serve(route, call, stream, headers, body, timeoutMs, options.logger, options.access);
    });
    return true;
  };
}

function serve(route: Route, call: GrpcStreamCall, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Uint8Array, timeoutMs: number | undefined, logger: Logger, access: AccessGuard | undefined): void {
  const { service, method } = route;
  const path = headers[":path"] ?? "";
  let request: Message;
  try {
    request = fromBinary(method.input, body);
  } catch (error) {
    call.fail(new ConnectError(`request: must be one ${method.input.typeName} in protobuf binary (${error instanceof Error ? error.message : String(error)})`, Code.InvalidArgument));
    return;
  }
  const limited = access?.serviceRefusal(path, headers.authorization, request);
  if (limited !== undefined) {
    call.fail(limited);
    return;
  }
  const context = new LazyContext({ service, method, protocolName: "grpc", requestMethod: "POST", url: `/${service.typeName}/${method.name}`, timeoutMs }, headers);
  // A timer of its own rather than the handler context's deadline signal, which would make the context for every call that has a deadline.
  const deadline =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          const error = new ConnectError("the operation timed out", Code.DeadlineExceeded);
          call.fail(error);
          context.made?.abort(error);
        }, timeoutMs);
  // A stream's access can be withdrawn while it is open (`AccessGuard.replace`).
  const release =
    method.methodKind === "server_streaming"
      ? access?.hold(path, headers.authorization, (error) => {
          call.fail(error);
          context.made?.abort(error);
        })
      : undefined;
  stream.once("close", () => {
    clearTimeout(deadline);
    release?.();
    if (!call.finished) context.made?.abort(new ConnectError("the client cancelled the call", Code.Canceled));
  });
  const done = (error?: unknown) => {
    clearTimeout(deadline);
    if (error !== undefined) call.fail(toConnectError(error, logger, method.name));
    if (timeoutMs !== undefined) context.made?.abort(new ConnectError("the call has finished", Code.Canceled));
  };
  const answering = method.methodKind === "unary" ? answerOnce(route, request, context.handlerContext, call) : streamAnswers(route, request, context.handlerContext, call);
  answering.then(() => done(), done).catch((error: unknown) => logger.error({ err: error, procedure: method.name }, "could not end a gRPC call"));
}

/**
 * A handler context made on first use. Most unary handlers never look at
 * theirs, and making one costs an AbortController and three Headers per call:
 * with a deadline (grpc-timeout, which most gRPC clients send), Heartbeat
 * took 117 us of CPU a call where it took 48 without one, when the deadline
 * alone made the context (BENCHMARKS.md, "Deadlines").
 */
class LazyContext {
  /** The context, once a handler (or a deadline) has asked for it. */
  made: ReturnType<typeof createHandlerContext> | undefined;
  readonly handlerContext: HandlerContext;

  constructor(init: Parameters<typeof createHandlerContext>[0], headers: http2.IncomingHttpHeaders) {
    this.handlerContext = new Proxy({} as HandlerContext, { get: (_, key) => Reflect.get((this.made ??= createHandlerContext({ ...init, requestHeader: requestHeaderOf(headers) })), key) as unknown });
  }
}

/** The request's headers as a handler sees them on every protocol: without HTTP/2's pseudo-headers. */
function requestHeaderOf(headers: http2.IncomingHttpHeaders): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) header.append(name, one);
  }
  return header;
}

async function answerOnce({ method, handler }: Route, request: Message, context: HandlerContext, call: GrpcStreamCall): Promise<void> {
  const answer = (await handler(request, context)) as Message;
  call.reply(grpcFrameOf(method.output, answer));
}

async function streamAnswers({ method, handler }: Route, request: Message, context: HandlerContext, call: GrpcStreamCall): Promise<void> {
  const answers = (handler(request, context) as AsyncIterable<Message>)[Symbol.asyncIterator]();
  while (await writeNextAnswer(answers, method.output, call)) {
    if (!call.open) {
      await answers.return?.();
      return;
    }
  }
  call.finish();
}

/**
 * Writes the stream's next answer; false once there is none. It is a call
 * of its own so that no answer stays referenced while the stream waits for
 * the next one: a `for await` loop keeps its last answer, and an idle
 * watcher's last answer is often its whole snapshot.
 */
async function writeNextAnswer(answers: AsyncIterator<Message>, output: DescMessage, call: GrpcStreamCall): Promise<boolean> {
  const next = await answers.next();
  if (next.done === true) return false;
  if (call.open && !call.write(grpcFrameOf(output, next.value))) await call.drained();
  return true;
}
