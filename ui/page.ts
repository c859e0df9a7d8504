import { ago, callJson, CallError, eventWord, healthWord, streamJson, WatchView, type EventJson, type InstanceJson } from "./view.js";

/*
 * The dashboard page: every instance, live through one Watch, its recent
 * changes, and Drain / Undrain. Everything the registry sends is written
 * with textContent, never as HTML, so no instance field can script the page.
 */

const registry = window.location.origin;
const tokenKey = "muster-token";
const shownEvents = 100;

interface Elements {
  readonly status: HTMLElement;
  readonly filter: HTMLInputElement;
  readonly rows: HTMLTableSectionElement;
  readonly events: HTMLOListElement;
  readonly tokenForm: HTMLFormElement;
  readonly token: HTMLInputElement;
}

function element<T extends HTMLElement>(id: string, kind: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof kind)) throw new Error(`the page has no ${kind.name} #${id}`);
  return found;
}

function headers(): Record<string, string> {
  const token = sessionStorage.getItem(tokenKey);
  return token === null ? {} : { Authorization: `Bearer ${token}` };
}

function cell(row: HTMLTableRowElement, text: string, className = ""): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  if (className !== "") td.className = className;
  return td;
}

function renderRows(page: Elements, view: WatchView): void {
  const wanted = page.filter.value.trim().toLowerCase();
  const now = Date.now();
  page.rows.replaceChildren();
  for (const instance of view.sorted()) {
    if (wanted !== "" && !`${instance.service}/${instance.id} ${instance.address ?? ""} ${instance.zone ?? ""}`.toLowerCase().includes(wanted)) continue;
    const row = page.rows.insertRow();
    cell(row, instance.service);
    cell(row, instance.id);
    cell(row, instance.address ?? "");
    cell(row, instance.version ?? "-");
    cell(row, instance.zone ?? "-");
    const health = healthWord(instance.health);
    cell(row, health, `health ${health.toLowerCase()}`);
    cell(row, instance.drain === undefined ? "" : `drained${instance.drain.reason === undefined ? "" : `: ${instance.drain.reason}`}`, "drain");
    cell(row, ago(instance.lastHeartbeatAt, now));
    cell(row, (instance.tags ?? []).join(", "));
    const action = document.createElement("button");
    action.textContent = instance.drain === undefined ? "Drain" : "Undrain";
    action.addEventListener("click", () => void toggleDrain(page, instance));
    row.insertCell().append(action);
  }
}

function renderEvents(page: Elements, events: readonly EventJson[]): void {
  for (const event of events) {
    const item = document.createElement("li");
    const time = event.time === undefined ? "" : new Date(event.time).toLocaleTimeString();
    item.textContent = `${time}  ${eventWord(event.type)}  ${event.instance?.service ?? "?"}/${event.instance?.id ?? "?"}  ${healthWord(event.instance?.health)}${event.removed === true ? " (gone)" : ""}`;
    page.events.prepend(item);
  }
  while (page.events.children.length > shownEvents) page.events.lastElementChild?.remove();
}

async function toggleDrain(page: Elements, instance: InstanceJson): Promise<void> {
  const request = { service: instance.service, id: instance.id };
  try {
    if (instance.drain !== undefined) await callJson(registry, "Undrain", request, headers());
    else {
      const reason = window.prompt(`Drain ${instance.service}/${instance.id}: why?`, "");
      if (reason === null) return;
      await callJson(registry, "Drain", { ...request, reason }, headers());
    }
  } catch (error) {
    showTrouble(page, error);
  }
}

function showTrouble(page: Elements, error: unknown): void {
  const refused = error instanceof CallError && (error.code === "unauthenticated" || error.code === "permission_denied");
  page.tokenForm.hidden = !refused;
  page.status.textContent = error instanceof Error ? error.message : String(error);
  page.status.className = "trouble";
}

async function showStatus(page: Elements): Promise<void> {
  try {
    const status = await callJson<StatusJson>(registry, "Status", {}, headers());
    page.status.textContent = `muster ${status.version ?? ""} · revision ${status.revision ?? "0"} · ${status.instances ?? 0} instances: ${status.healthy ?? 0} healthy, ${status.degraded ?? 0} degraded, ${status.unhealthy ?? 0} unhealthy, ${status.drained ?? 0} drained · ${status.watchers ?? 0} watchers${status.following === undefined ? "" : ` · ${followingText(status.following, BigInt(status.revision ?? "0"))}`}`;
    page.status.className = "";
  } catch (error) {
    showTrouble(page, error);
  }
}

/** What the page reads of Status, in Connect's JSON (64-bit numbers as strings, defaults left out). */
interface StatusJson {
  version?: string;
  revision?: string;
  instances?: number;
  healthy?: number;
  degraded?: number;
  unhealthy?: number;
  drained?: number;
  watchers?: number;
  following?: { leader?: string; connected?: boolean; lastError?: string; leaderRevision?: string };
}

/** A follower's link, as `muster status` says it: writes made here go to the leader. */
function followingText(following: NonNullable<StatusJson["following"]>, copied: bigint): string {
  const leader = following.leader ?? "";
  if (following.connected !== true) return `follower of ${leader}, NOT REACHED${following.lastError === undefined ? "" : `: ${following.lastError}`}; showing the last copy`;
  const behind = BigInt(following.leaderRevision ?? "0") - copied;
  return `follower of ${leader}, ${behind > 0n ? `${behind} change${behind === 1n ? "" : "s"} behind` : "up to date"}`;
}

/** Follows one Watch of everything until `stop` aborts, resuming from its last revision after a break. */
async function follow(page: Elements, view: WatchView, stop: AbortSignal): Promise<void> {
  // A function, not a property read, so checks after an await are not narrowed away.
  const stopped = () => stop.aborted;
  for (let failures = 0; !stopped(); failures++) {
    try {
      await streamJson(registry, "Watch", view.request(), headers(), stop, (message) => {
        failures = 0;
        renderEvents(page, view.apply(message));
        // Heartbeats and progress messages change no row but its age, which the 5s redraw shows: a large table is not redrawn every second for them.
        if (message.snapshot === true || (message.events?.length ?? 0) > 0) renderRows(page, view);
      });
    } catch (error) {
      if (stopped()) return;
      showTrouble(page, error);
    }
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.min(10_000, 500 * 2 ** failures));
      stop.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve(undefined);
      }, { once: true });
    });
  }
}

function start(): void {
  const page: Elements = {
    status: element("status", HTMLElement),
    filter: element("filter", HTMLInputElement),
    rows: element("rows", HTMLTableSectionElement),
    events: element("events", HTMLOListElement),
    tokenForm: element("token-form", HTMLFormElement),
    token: element("token", HTMLInputElement),
  };
  const view = new WatchView();
  // Leaving the page (or its being put in the back-forward cache) ends the Watch and the timers.
  const stop = new AbortController();
  window.addEventListener("pagehide", () => stop.abort(), { once: true });
  page.tokenForm.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    sessionStorage.setItem(tokenKey, page.token.value.trim());
    page.tokenForm.hidden = true;
    void showStatus(page);
  });
  page.filter.addEventListener("input", () => renderRows(page, view));
  // The counts, and each row's "3s ago", age between changes.
  const ageing = setInterval(() => {
    void showStatus(page);
    renderRows(page, view);
  }, 5_000);
  stop.signal.addEventListener("abort", () => clearInterval(ageing), { once: true });
  void showStatus(page);
  void follow(page, view, stop.signal);
}

start();
