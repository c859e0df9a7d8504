import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { afterFirstAnswer } from "../src/cli/first-answer.js";
import { TestRegistry } from "./support/test-registry.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `promise` has settled by the time the event loop has turned once. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await sleep(0);
  return done;
}

/** A server's first answer, settled by hand. */
function answerByHand(): { firstAnswered: Promise<void>; answer: () => void } {
  let answer: (() => void) | undefined;
  const firstAnswered = new Promise<void>((resolve) => (answer = resolve));
  return { firstAnswered, answer: () => answer?.() };
}

describe("a server's first answer", () => {
  it("settles once a gRPC call has been answered, and not before", async () => {
    const server = await TestRegistry.start();
    await sleep(50);
    expect(await settled(server.firstAnswered)).toBe(false);
    await server.client().status({});
    await expect(Promise.race([server.firstAnswered.then(() => "answered"), sleep(5_000).then(() => "still waiting")])).resolves.toBe("answered");
  });

  it("settles once an HTTP/1.1 call has been answered, and not for a dashboard page or an unknown path before it", async () => {
    const server = await TestRegistry.start();
    expect((await fetch(`${server.url}/ui`)).status).toBe(200);
    expect((await fetch(`${server.url}/no/such/thing`)).status).toBe(404);
    await sleep(50);
    expect(await settled(server.firstAnswered)).toBe(false);
    const answer = await fetch(`${server.url}/muster.v1.RegistryService/Status`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(answer.status).toBe(200);
    await expect(Promise.race([server.firstAnswered.then(() => "answered"), sleep(5_000).then(() => "still waiting")])).resolves.toBe("answered");
  });

  it("does not settle for a dashboard page over HTTP/2", async () => {
    const server = await TestRegistry.start();
    const session = http2.connect(server.url);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = session.request({ ":path": "/ui" });
      request.on("response", (headers) => resolve(headers[":status"]));
      request.on("error", reject);
      request.resume();
    });
    session.close();
    expect(status).toBe(200);
    await sleep(50);
    expect(await settled(server.firstAnswered)).toBe(false);
  });
});

describe("afterFirstAnswer", () => {
  it("starts at the first answer, calling onFirstAnswer first, and only once", async () => {
    const { firstAnswered, answer } = answerByHand();
    const order: string[] = [];
    const stop = afterFirstAnswer(firstAnswered, () => (order.push("start"), () => order.push("stop")), { onFirstAnswer: () => order.push("first answer"), waitMs: 100 });
    await sleep(20);
    expect(order).toEqual([]);
    answer();
    await sleep(0);
    expect(order).toEqual(["first answer", "start"]);
    await sleep(150);
    expect(order).toEqual(["first answer", "start"]);
    stop();
    expect(order).toEqual(["first answer", "start", "stop"]);
  });

  it("starts without onFirstAnswer when no answer comes in time, and a late answer changes nothing", async () => {
    const { firstAnswered, answer } = answerByHand();
    const order: string[] = [];
    const stop = afterFirstAnswer(firstAnswered, () => (order.push("start"), () => order.push("stop")), { onFirstAnswer: () => order.push("first answer"), waitMs: 30 });
    await sleep(80);
    expect(order).toEqual(["start"]);
    answer();
    await sleep(0);
    expect(order).toEqual(["start"]);
    stop();
    expect(order).toEqual(["start", "stop"]);
  });

  it("never starts once stopped first", async () => {
    const { firstAnswered, answer } = answerByHand();
    const order: string[] = [];
    const stop = afterFirstAnswer(firstAnswered, () => (order.push("start"), () => order.push("stop")), { onFirstAnswer: () => order.push("first answer"), waitMs: 30 });
    stop();
    answer();
    await sleep(80);
    expect(order).toEqual([]);
  });
});
