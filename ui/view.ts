/*
 * The dashboard's logic without the page: reading Connect's streaming
 * envelopes, following a Watch into a view, and the words a table shows.
 * It runs in browsers and in Node (the tests call it against a real
 * registry), so it uses nothing but fetch and the JSON the registry sends.
 */

/** An Instance in proto3 JSON, as Connect's JSON codec writes it (default fields left out). */
export interface InstanceJson {
  readonly service: string;
  readonly id: string;
  readonly address?: string;
  readonly version?: string;
  readonly zone?: string;
  readonly tags?: readonly string[];
  readonly health?: string;
  readonly lastHeartbeatAt?: string;
  readonly revision?: string;
  readonly drain?: { readonly reason?: string; readonly since?: string };
}

export interface EventJson {
  readonly type?: string;
  readonly instance?: InstanceJson;
  readonly revision?: string;
  readonly time?: string;
  readonly removed?: boolean;
}

export interface WatchResponseJson {
  readonly events?: readonly EventJson[];
  readonly revision?: string;
  readonly snapshot?: boolean;
  readonly more?: boolean;
  readonly history?: string;
  readonly heartbeats?: readonly { readonly service?: string; readonly id?: string; readonly at?: string }[];
}

/** A call the registry refused: Connect's error code ("unauthenticated", ...) and message. */
export class CallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Connect's envelope flag for the message that ends a stream (with an error, or none). */
const endStream = 0b10;

/**
 * Calls a server-streaming method with Connect's JSON protocol and hands each
 * message to `onMessage` until the stream ends (resolves) or fails (rejects
 * with a CallError). `signal` cancels it.
 */
export async function streamJson(baseUrl: string, method: string, request: object, headers: Record<string, string>, signal: AbortSignal, onMessage: (message: WatchResponseJson) => void): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(request));
  const envelope = new Uint8Array(5 + body.length);
  new DataView(envelope.buffer).setUint32(1, body.length);
  envelope.set(body, 5);
  const response = await fetch(`${baseUrl}/muster.v1.RegistryService/${method}`, { method: "POST", headers: { ...headers, "Content-Type": "application/connect+json" }, body: envelope, signal });
  if (!response.ok || response.body === null) throw await errorOf(response);
  const reader = response.body.getReader();
  let pending: Uint8Array = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new CallError("unavailable", "the stream ended without its last message");
    pending = joined(pending, value);
    while (pending.length >= 5) {
      const length = new DataView(pending.buffer, pending.byteOffset).getUint32(1);
      if (pending.length < 5 + length) break;
      const flags = pending[0] ?? 0;
      const json = JSON.parse(new TextDecoder().decode(pending.subarray(5, 5 + length))) as WatchResponseJson & { error?: { code?: string; message?: string } };
      pending = pending.slice(5 + length);
      if ((flags & endStream) === 0) onMessage(json);
      else if (json.error !== undefined) throw new CallError(json.error.code ?? "unknown", json.error.message ?? "");
      else return;
    }
  }
}

/** Calls a unary method with Connect's JSON protocol. */
export async function callJson<T>(baseUrl: string, method: string, request: object, headers: Record<string, string>): Promise<T> {
  const response = await fetch(`${baseUrl}/muster.v1.RegistryService/${method}`, { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(request) });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

async function errorOf(response: Response): Promise<CallError> {
  const text = await response.text();
  try {
    const error = JSON.parse(text) as { code?: string; message?: string };
    return new CallError(error.code ?? "unknown", error.message ?? text);
  } catch {
    return new CallError("unknown", `HTTP ${response.status}: ${text}`);
  }
}

function joined(a: Uint8Array, b: Uint8Array): Uint8Array {
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  return both;
}

/**
 * The instances a Watch has shown, kept as the registry's own SDK keeps
 * them: a snapshot (in parts while `more`) replaces the view, an event
 * updates it, `removed` takes an instance out. `revision` is where to
 * resume after a broken stream, and `history` the history it counts in,
 * so a registry wiped or restored meanwhile answers with a snapshot.
 */
export class WatchView {
  readonly instances = new Map<string, InstanceJson>();
  revision = "0";
  history = "";
  private incoming: Map<string, InstanceJson> | undefined;

  /** The Watch that follows everything from where the view is, heartbeats too, so last heartbeats stay current. */
  request(): Record<string, unknown> {
    return { includeUnhealthy: true, includeDrained: true, includeHeartbeats: true, sinceRevision: this.revision, history: this.history };
  }

  /** Applies one message; returns the events it brought that are changes, not the snapshot's contents. */
  apply(message: WatchResponseJson): readonly EventJson[] {
    const events = message.events ?? [];
    if (message.snapshot === true || this.incoming !== undefined) {
      this.incoming ??= new Map();
      for (const event of events) if (event.instance !== undefined) this.incoming.set(keyOf(event.instance), event.instance);
      if (message.more === true) return [];
      this.instances.clear();
      for (const [key, instance] of this.incoming) this.instances.set(key, instance);
      this.incoming = undefined;
    } else {
      for (const event of events) {
        if (event.instance === undefined) continue;
        if (event.removed === true) this.instances.delete(keyOf(event.instance));
        else this.instances.set(keyOf(event.instance), event.instance);
      }
      for (const { service = "", id = "", at } of message.heartbeats ?? []) {
        const instance = this.instances.get(keyOf({ service, id }));
        if (instance === undefined || at === undefined) continue;
        if (instance.lastHeartbeatAt === undefined || Date.parse(at) > Date.parse(instance.lastHeartbeatAt)) this.instances.set(keyOf(instance), { ...instance, lastHeartbeatAt: at });
      }
    }
    // Both are taken once the view reflects them: a snapshot in parts has no revision before its last.
    if (message.revision !== undefined && message.revision !== "0") {
      this.revision = message.revision;
      this.history = message.history ?? this.history;
    }
    return message.snapshot === true ? [] : events;
  }

  /** The instances by service, then id, as `muster ls` orders them. */
  sorted(): InstanceJson[] {
    return [...this.instances.values()].sort((a, b) => (a.service === b.service ? compare(a.id, b.id) : compare(a.service, b.service)));
  }
}

function keyOf(instance: InstanceJson): string {
  return `${instance.service}/${instance.id}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** HEALTHY, DEGRADED, UNHEALTHY: the enum name without its prefix. */
export function healthWord(health: string | undefined): string {
  return (health ?? "HEALTH_STATUS_UNSPECIFIED").replace(/^HEALTH_STATUS_/, "");
}

/** REGISTERED, DRAIN_CHANGED, ...: the event type without its prefix. */
export function eventWord(type: string | undefined): string {
  return (type ?? "EVENT_TYPE_UNSPECIFIED").replace(/^EVENT_TYPE_/, "");
}

/** "3s ago", "5m ago", as `muster ls` says it; "-" without a time. */
export function ago(time: string | undefined, now: number): string {
  if (time === undefined) return "-";
  const seconds = Math.max(0, Math.round((now - Date.parse(time)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}
