/**
 * A method's calls, counted in plain numbers: prom-client's own counters
 * hash their labels at every increment, which cost a Heartbeat 10% of its
 * rate. They are read into prom-client at each scrape.
 */
export class MethodCalls {
  started = 0;
  /** By gRPC status, 0 (OK) to 16. */
  readonly ended: number[] = [];

  constructor(readonly labels: Readonly<Record<"grpc_type" | "grpc_service" | "grpc_method", string>>) {}

  start(): void {
    this.started++;
  }

  /** The call ended with this status; call once per call. */
  end(status: number): void {
    this.ended[status] = (this.ended[status] ?? 0) + 1;
  }
}
