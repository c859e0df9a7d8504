import type { WatchResponse } from "../../gen/muster/v1/registry_pb.js";

/**
 * Reads a Watch stream message by message with a deadline, so a test that
 * expects a message fails (instead of hanging) when it never comes.
 */
export class WatchReader {
  private readonly iterator: AsyncIterator<WatchResponse>;
  private pending: Promise<IteratorResult<WatchResponse>> | undefined;

  constructor(stream: AsyncIterable<WatchResponse>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** The next message; rejects after `timeoutMs` or when the stream ends. */
  async next(timeoutMs = 5000): Promise<WatchResponse> {
    this.pending ??= this.iterator.next();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no watch message within ${timeoutMs}ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([this.pending, timeout]);
      this.pending = undefined;
      if (result.done === true) throw new Error("watch stream ended");
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Messages until one carries events (skipping progress messages). */
  async nextWithEvents(timeoutMs = 5000): Promise<WatchResponse> {
    for (;;) {
      const message = await this.next(timeoutMs);
      if (message.events.length > 0) return message;
    }
  }

  /** True when no message arrives within `ms`. */
  async quietFor(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("no watch message")) return true;
      throw error;
    }
  }
}
