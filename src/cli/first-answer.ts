/** How long a server waits for its first answered call before it starts what waits for one regardless. */
const defaultFirstAnswerWaitMs = 5_000;

/**
 * Starts `start` once the server has answered its first call (calling
 * `onFirstAnswer` just before), or after `waitMs` (default 5,000) without
 * one, whichever comes first. `serve` starts its V8 tuning this way: V8
 * rejects a code cache made under other flags than a fresh start has, so
 * the executable's cache of the serving path (`onFirstAnswer`) must be made
 * before any flag changes, and the tuning matters only under load, which
 * starts with a call. A server that gets no call within `waitMs` is tuned
 * then and keeps the shallower cache it has.
 *
 * `start` returns its own stop. Returns the function that stops it, or, if
 * it has not started yet, keeps it from starting.
 */
export function afterFirstAnswer(firstAnswered: Promise<void>, start: () => () => void, options: { readonly onFirstAnswer?: (() => void) | undefined; readonly waitMs?: number } = {}): () => void {
  let stopStarted: (() => void) | undefined;
  let cancelled = false;
  const begin = (answered: boolean) => {
    if (cancelled || stopStarted !== undefined) return;
    clearTimeout(waiting);
    if (answered) options.onFirstAnswer?.();
    stopStarted = start();
  };
  const waiting = setTimeout(() => begin(false), options.waitMs ?? defaultFirstAnswerWaitMs).unref();
  void firstAnswered.then(() => begin(true));
  return () => {
    cancelled = true;
    clearTimeout(waiting);
    stopStarted?.();
  };
}
