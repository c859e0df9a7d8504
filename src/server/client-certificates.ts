import { Code, ConnectError, createContextKey } from "@connectrpc/connect";

/**
 * What a call's connection shows of its client certificate: a TLSSocket, or
 * Node's proxy of one under HTTP/2 (which throws once the session is gone).
 */
export interface PeerSocket {
  readonly authorized?: boolean;
  readonly authorizationError?: Error | string;
  getPeerCertificate?(): { readonly raw?: Buffer };
}

/** The socket of a call Connect serves, for the guard; set only when the registry asks for client certificates. */
export const peerSocketKey = createContextKey<PeerSocket | undefined>(undefined, { description: "the TLS socket a call came over" });

/**
 * Why a call over this connection may not go ahead under mutual TLS, or
 * undefined when its client showed a certificate the registry's client CA
 * signed. The handshake lets every client through so that the refusal is
 * an UNAUTHENTICATED with a sentence, not a TLS alert that clients report
 * as a reset connection, and so that health checks need no certificate.
 */
export function certificateRefusal(peer: PeerSocket | undefined): ConnectError | undefined {
  let verdict: { readonly presented: boolean; readonly reason: string } | undefined;
  try {
    if (peer?.authorized === true) return undefined;
    const reason = peer?.authorizationError;
    verdict = { presented: peer?.getPeerCertificate?.().raw !== undefined, reason: reason instanceof Error ? reason.message : String(reason) };
  } catch {
    verdict = undefined;
  }
  const why = verdict === undefined ? "the connection is closing" : verdict.presented ? `the client certificate is not one the registry's client CA signed (${verdict.reason})` : "a client certificate is required";
  return new ConnectError(`${why}: this registry takes calls only from clients with a certificate its client CA signed (the SDK's cert and key options; MUSTER_TLS_CLIENT_CERT and MUSTER_TLS_CLIENT_KEY for the CLI)`, Code.Unauthenticated);
}
