import { performance, type EventLoopUtilization } from "node:perf_hooks";

/**
 * Calls `look` every `everyMs` with the share of the span since the last
 * look that the event loop was busy, 0 to 1. The next span starts when a
 * look returns, so a look's own work (a full collection) does not count as
 * load at the next one. The timer does not keep the process alive. Returns
 * the function that stops looking.
 */
export function lookAtLoad(everyMs: number, look: (utilization: number) => void): () => void {
  let since: EventLoopUtilization = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    look(performance.eventLoopUtilization(since).utilization);
    since = performance.eventLoopUtilization();
  }, everyMs).unref();
  return () => clearInterval(timer);
}
