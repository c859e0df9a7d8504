import { createSecureContext } from "node:tls";
import { ListenError } from "./listen-error.js";

/** A certificate (its chain may follow it) and its private key, PEM. */
export interface TlsCredentials {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/**
 * Throws a ListenError ("tls-credentials") saying what is wrong with a
 * certificate and key that cannot serve TLS; the registry checks them
 * before it opens the data directory, and before a reload, so a bad pair
 * changes nothing.
 */
export function checkTlsCredentials(credentials: TlsCredentials): void {
  try {
    createSecureContext({ cert: credentials.cert, key: credentials.key });
  } catch (error) {
    const reason = (error as Error).message;
    const why = /key values mismatch/.test(reason) ? "the private key is not the certificate's; give the key the certificate was issued for" : `the certificate or the key is not usable PEM (${reason})`;
    throw new ListenError("tls-credentials", `cannot serve TLS: ${why}`);
  }
}
