import { ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** The error a call fails with, as a ConnectError; a call that succeeds fails the test. */
export function callError(call: Promise<unknown>): Promise<ConnectError> {
  return call.then(
    () => expect.fail("the call succeeded"),
    (thrown: unknown) => ConnectError.from(thrown),
  );
}
