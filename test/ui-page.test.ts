// @vitest-environment happy-dom
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { createRegistryClient } from "../src/client/registry-client.js";
import { pino } from "pino";
import { LeaderLink } from "../src/cli/leader-link.js";
import { parseAccessTokens } from "../src/server/access-tokens.js";
import { TestRegistry } from "./support/test-registry.js";

// The dashboard's page itself, in Happy DOM (a browser's DOM and fetch without the window), against the real registry.

const ttl = durationFromMs(600_000);

/** The table's rows as their cells' text, without the button column. */
function rows(): string[][] {
  return [...document.querySelectorAll("#rows tr")].map((row) => [...row.querySelectorAll("td")].slice(0, -1).map((cell) => cell.textContent));
}

const happyDom = (window as unknown as { happyDOM: { setURL(url: string): void } }).happyDOM;

/** Leaves the page, which ends its Watch and timers, as a browser does on navigating away. */
const leavePage = (): void => {
  window.dispatchEvent(new Event("pagehide"));
};

/** Loads the page as a browser would from `registry`, its script run anew. */
async function openPage(registry: string): Promise<void> {
  happyDom.setURL(`${registry}/ui`);
  onTestFinished(leavePage);
  // Under Happy DOM, import.meta.url is the page's, not a file: vitest runs from the repository.
  const html = await readFile(resolve("ui/index.html"), "utf8");
  document.documentElement.innerHTML = html.replace(/^<!doctype html>\s*<html[^>]*>/i, "").replace(/<\/html>\s*$/, "").replace(/<script[^>]*><\/script>|<link[^>]*>/g, "");
  vi.resetModules();
  await import("../ui/page.js");
}

describe("the dashboard page", () => {
  it("on a follower, says whose follower it is and whether it is up to date, and drains through it", async () => {
    const leader = await TestRegistry.start();
    await leader.client().register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", ttl } });
    const link = new LeaderLink(leader.url, {}, pino({ level: "silent" }));
    const follower = await TestRegistry.start({ following: link });
    link.start(follower.registry);
    onTestFinished(() => link.stop());

    await openPage(follower.url);
    await vi.waitFor(() => expect(document.getElementById("status")?.textContent).toMatch(new RegExp(`revision 1 · 1 instances: .* · follower of ${leader.url}, up to date$`)), { timeout: 7_000 });
    await vi.waitFor(() => expect(rows().map((row) => row[1])).toEqual(["a"]), { timeout: 5_000 });
    Object.defineProperty(window, "prompt", { value: () => "moved by the follower's page", configurable: true });
    document.querySelector<HTMLButtonElement>("#rows button")?.click();
    await vi.waitFor(async () => expect((await leader.client().discover({ service: "api", includeDrained: true })).instances[0]?.drain?.reason).toBe("moved by the follower's page"), { timeout: 5_000 });
    await vi.waitFor(() => expect(rows()[0]?.[6]).toBe("drained: moved by the follower's page"), { timeout: 5_000 });

    await leader.stop();
    await vi.waitFor(() => expect(document.getElementById("status")?.textContent).toMatch(/follower of .*, NOT REACHED: .*; showing the last copy$/), { timeout: 12_000 });
  }, 20_000);

  it("shows every instance and each change as it happens, writes what instances say as text, and drains with a click", async () => {
    const server = await TestRegistry.start();
    const client = server.client();
    await client.register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", zone: "eu-1a", tags: ["grpc", "canary"], ttl } });
    await client.register({ instance: { service: "db", id: "d", address: "10.0.0.2:5432", ttl } });
    // A drain's reason is the one free text an instance carries: markup in it must stay text.
    await client.drain({ service: "api", id: "a", reason: "<img src=x onerror=alert(1)>" });

    await openPage(server.url);

    await vi.waitFor(() => expect(rows().map((row) => row.slice(0, 2))).toEqual([["api", "a"], ["db", "d"]]), { timeout: 5_000 });
    const api = rows()[0] ?? [];
    expect(api.slice(2, 7)).toEqual(["10.0.0.1:80", "-", "eu-1a", "HEALTHY", "drained: <img src=x onerror=alert(1)>"]);
    expect(api[8]).toBe("grpc, canary");
    expect(document.querySelector("#rows img")).toBeNull();
    await vi.waitFor(() => expect(document.getElementById("status")?.textContent).toMatch(/revision 3 · 2 instances: 2 healthy, 0 degraded, 0 unhealthy, 1 drained/), { timeout: 7_000 });

    await client.register({ instance: { service: "api", id: "b", address: "10.0.0.3:80", ttl } });
    await vi.waitFor(() => expect(rows().map((row) => row[1])).toEqual(["a", "b", "d"]), { timeout: 5_000 });
    await vi.waitFor(() => expect(document.querySelector("#events li")?.textContent).toMatch(/REGISTERED {2}api\/b {2}HEALTHY$/), { timeout: 5_000 });

    // Happy DOM has no dialogs: the operator's answer to the page's question.
    Object.defineProperty(window, "prompt", { value: () => "pulled from the page", configurable: true });
    const drainButton = document.querySelectorAll("#rows tr")[2]?.querySelector("button");
    expect(drainButton?.textContent).toBe("Drain");
    drainButton?.click();
    await vi.waitFor(() => expect(rows()[2]?.[6]).toBe("drained: pulled from the page"), { timeout: 5_000 });
    expect((await client.discover({ service: "db", includeDrained: true })).instances[0]?.drain?.reason).toBe("pulled from the page");
    expect(document.querySelectorAll("#rows tr")[2]?.querySelector("button")?.textContent).toBe("Undrain");

    (document.getElementById("filter") as HTMLInputElement).value = "eu-1a";
    document.getElementById("filter")?.dispatchEvent(new Event("input"));
    expect(rows().map((row) => row[1])).toEqual(["a"]);
  });

  it("asks for a token when the registry requires one, and uses the one it is given", async () => {
    const server = await TestRegistry.start({ accessTokens: parseAccessTokens("read r-8a1b77c0e9d24f15\nwrite w-3f9c2a7d41b8e6f0\n") });
    await createRegistryClient({ baseUrl: server.url, token: "w-3f9c2a7d41b8e6f0" }).register({ instance: { service: "api", id: "a", address: "10.0.0.1:80", ttl } });
    sessionStorage.clear();
    await openPage(server.url);
    const form = document.getElementById("token-form") as HTMLFormElement;
    await vi.waitFor(() => expect(form.hidden).toBe(false), { timeout: 5_000 });
    expect(document.getElementById("status")?.textContent).toMatch(/^a token is required/);
    expect(rows()).toEqual([]);

    (document.getElementById("token") as HTMLInputElement).value = "r-8a1b77c0e9d24f15";
    form.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(form.hidden).toBe(true);
    await vi.waitFor(() => expect(rows().map((row) => row[1])).toEqual(["a"]), { timeout: 8_000 });
    // A read token cannot drain: the page says so, and offers to take another token.
    Object.defineProperty(window, "prompt", { value: () => "", configurable: true });
    document.querySelector<HTMLButtonElement>("#rows button")?.click();
    await vi.waitFor(() => expect(document.getElementById("status")?.textContent).toMatch(/needs a write token/), { timeout: 5_000 });
    expect(form.hidden).toBe(false);
  });
});
