import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { ListenError } from "./listen-error.js";

/** A certificate (its chain may follow it) and its private key, PEM; and, for mutual TLS, the CA that signs clients' certificates. */
export interface TlsCredentials {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** Ask every client for a certificate, and let only those this CA signed call RegistryService. Default: none asked. */
  readonly clientCa?: string | Buffer;
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
  if (credentials.clientCa === undefined) return;
  try {
    new X509Certificate(credentials.clientCa);
  } catch (error) {
    throw new ListenError("tls-credentials", `cannot serve TLS: the client CA is not a PEM certificate (${(error as Error).message})`);
  }
}
