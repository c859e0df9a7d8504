import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { HealthStatus, InstanceSchema, type Instance } from "../../gen/muster/v1/registry_pb.js";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import type { RegistryClient } from "./registry-client.js";

/**
 * Where an agent stands: `registering` until the first success,
 * `registered` while heartbeats succeed, `reconnecting` while the registry
 * is unreachable, `rejected` when the registry refused the instance as
 * invalid (retrying cannot help), `closed` after close().
 */
export type AgentState = "registering" | "registered" | "reconnecting" | "rejected" | "closed";

/** What a RegistryAgent tells of each state it enters. */
export interface AgentStateChange {
  readonly state: AgentState;
  /** The instance as last stored, once registered. */
  readonly instance: Instance | undefined;
  /** Why, for reconnecting and rejected. */
  readonly error: ConnectError | undefined;
}

/** How a RegistryAgent heartbeats, retries and leaves; every field has a default. */
export interface AgentOptions {
  /** Heartbeat every ttl times this. Default 1/3, so two heartbeats may be lost without going UNHEALTHY. */
  readonly heartbeatFraction?: number;
  /**
   * How long a Register or Heartbeat may take before it counts as failed
   * (DEADLINE_EXCEEDED): the agent then reports `reconnecting` and retries.
   * Default the heartbeat interval, at least 1s, so a registry that stops
   * answering is reported before the instance's ttl runs out, not when TCP
   * gives up.
   */
  readonly callTimeoutMs?: number;
  readonly backoff?: BackoffOptions;
  /** Deregister when the process gets one of these signals, then let the signal take its course. Default none. */
  readonly closeOnSignals?: readonly NodeJS.Signals[];
  /**
   * Told of every state change, and again of each failed attempt while
   * reconnecting (with that attempt's error) and of each registration; also
   * emitted as the "state" event.
   */
  readonly onStateChange?: (change: AgentStateChange) => void;
  /**
   * Told when an operator drains the instance (`muster drain`) or undrains
   * it, as the next registration or heartbeat learns it; also emitted as the
   * "drain" event. A worker that pulls its own work should stop taking new
   * work while drained: nothing else sends it away.
   */
  readonly onDrainChange?: (drained: boolean) => void;
}

/**
 * Keeps one instance registered whatever happens: registers, heartbeats at
 * a fraction of its ttl, registers again on NOT_FOUND (it expired, or the
 * registry lost its data), and retries with backoff while the registry is
 * unreachable. It never throws into the application; it reports through
 * state changes. `close()` deregisters.
 */
export class RegistryAgent extends EventEmitter<{ state: [AgentStateChange]; drain: [boolean] }> {
  private readonly instance: Instance;
  private readonly abort = new AbortController();
  private readonly signalHandlers = new Map<NodeJS.Signals, () => void>();
  private readonly running: Promise<void>;
  private status = HealthStatus.UNSPECIFIED;
  private wakeEarly: (() => void) | undefined;
  private current: AgentStateChange = { state: "registering", instance: undefined, error: undefined };
  private isDrained = false;

  constructor(
    private readonly client: RegistryClient,
    instance: MessageInitShape<typeof InstanceSchema>,
    private readonly options: AgentOptions = {},
  ) {
    super();
    this.instance = create(InstanceSchema, instance);
    for (const signal of options.closeOnSignals ?? []) {
      const handler = () => void this.closeForSignal(signal);
      this.signalHandlers.set(signal, handler);
      process.once(signal, handler);
    }
    this.running = this.run();
  }

  get state(): AgentState {
    return this.current.state;
  }

  /** The instance as last stored by the registry (with its generated id), once registered. */
  get registered(): Instance | undefined {
    return this.current.instance;
  }

  /** Whether the registry last said an operator drained the instance (see `onDrainChange`). */
  get drained(): boolean {
    return this.isDrained;
  }

  /** Resolves when the agent reaches `state` (at once if it is there). */
  until(state: AgentState): Promise<AgentStateChange> {
    if (this.current.state === state) return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const listener = (change: AgentStateChange) => {
        if (change.state !== state) return;
        this.off("state", listener);
        resolve(change);
      };
      this.on("state", listener);
    });
  }

  /** Reports the agent's own health from the next heartbeat on, which is sent at once. */
  report(status: HealthStatus): void {
    this.status = status;
    this.wakeEarly?.();
  }

  /** Stops heartbeating and deregisters (best effort, bounded by `timeoutMs`, default 2s). */
  async close(timeoutMs = 2_000): Promise<void> {
    if (this.abort.signal.aborted) return this.running;
    this.abort.abort();
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    await this.running;
    const { id, service } = this.instance;
    if (id !== "" && this.current.instance !== undefined) {
      await this.client.deregister({ service, id }, { timeoutMs }).catch(() => undefined);
    }
    this.setState("closed", undefined);
  }

  private async run(): Promise<void> {
    let registered = false;
    let failures = 0;
    while (!this.isClosed()) {
      const call = { signal: this.abort.signal, timeoutMs: Math.ceil(this.options.callTimeoutMs ?? Math.max(1_000, this.heartbeatInterval())) };
      try {
        if (registered) {
          const { drained } = await this.client.heartbeat({ service: this.instance.service, id: this.instance.id, status: this.status }, call);
          if (this.current.state !== "registered") this.setState("registered", undefined);
          this.setDrained(drained);
        } else {
          const { instance } = await this.client.register({ instance: this.instance }, call);
          if (instance === undefined) throw new ConnectError("registry answered without an instance", Code.Internal);
          this.instance.id = instance.id;
          registered = true;
          this.setState("registered", undefined, instance);
          this.setDrained(instance.drain !== undefined);
        }
        failures = 0;
        await this.pause(this.heartbeatInterval());
      } catch (thrown) {
        if (this.isClosed()) return;
        const error = ConnectError.from(thrown);
        if (error.code === Code.NotFound) {
          registered = false;
          continue;
        }
        if (error.code === Code.InvalidArgument) {
          this.setState("rejected", error);
          return;
        }
        this.setState("reconnecting", error);
        await this.pause(backoffDelay(failures++, this.options.backoff));
      }
    }
  }

  /** A method, not a property read, so checks after an await are not narrowed away. */
  private isClosed(): boolean {
    return this.abort.signal.aborted;
  }

  private heartbeatInterval(): number {
    const ttl = this.current.instance?.ttl;
    const ttlMs = ttl === undefined ? 10_000 : durationMs(ttl);
    return ttlMs * (this.options.heartbeatFraction ?? 1 / 3);
  }

  /** Waits `ms` unless closed or woken by report(); never keeps the process alive alone. */
  private async pause(ms: number): Promise<void> {
    const early = new Promise<void>((resolve) => (this.wakeEarly = resolve));
    await Promise.race([sleep(ms, undefined, { signal: this.abort.signal, ref: false }).catch(() => undefined), early]);
    this.wakeEarly = undefined;
  }

  private setState(state: AgentState, error: ConnectError | undefined, instance = this.current.instance): void {
    this.current = { state, instance, error };
    this.options.onStateChange?.(this.current);
    this.emit("state", this.current);
  }

  private setDrained(drained: boolean): void {
    if (drained === this.isDrained) return;
    this.isDrained = drained;
    this.options.onDrainChange?.(drained);
    this.emit("drain", drained);
  }

  private async closeForSignal(signal: NodeJS.Signals): Promise<void> {
    await this.close();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  }
}
