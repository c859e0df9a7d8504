/** What a stream's messages ended with, as `watchedMessages` reports it. */
export interface MessagesEnd {
  /** They ran out. */
  readonly done?: () => void;
  /** They threw: returns what to throw instead (or the error itself). */
  readonly failed?: (error: unknown) => unknown;
  /** The reader stopped before either, as Connect does when the client leaves. */
  readonly left?: () => void;
}

/**
 * A stream response's messages, passed on unchanged, with how they ended
 * reported: to the server's interceptors that log, convert or count it, and
 * to the client's failover, which moves on from a registry that went away.
 */
export async function* watchedMessages<T>(messages: AsyncIterable<T>, end: MessagesEnd): AsyncGenerator<T> {
  let ended = false;
  try {
    yield* messages;
    ended = true;
    end.done?.();
  } catch (error) {
    ended = true;
    throw end.failed === undefined ? error : end.failed(error);
  } finally {
    if (!ended) end.left?.();
  }
}
