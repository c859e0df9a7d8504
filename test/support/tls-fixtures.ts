import { readFileSync } from "node:fs";
import { join } from "node:path";

/*
 * test/fixtures/tls: a CA made for the tests and two certificates it signed
 * for localhost, 127.0.0.1 and ::1; a client CA and a client certificate it
 * signed (clientAuth, spiffe://muster.test/agent); and a client certificate
 * another CA signed. All valid until 2126. Their keys are test keys,
 * published on purpose; the CAs' keys were not kept.
 */

const folder = join(import.meta.dirname, "..", "fixtures", "tls");

/** The PEM files' paths, for processes that take files (`muster serve`, buf curl, Python). */
export const tlsFiles = {
  ca: join(folder, "ca.pem"),
  cert: join(folder, "server.pem"),
  key: join(folder, "server-key.pem"),
  nextCert: join(folder, "server-next.pem"),
  nextKey: join(folder, "server-next-key.pem"),
  clientCa: join(folder, "client-ca.pem"),
  clientCert: join(folder, "client.pem"),
  clientKey: join(folder, "client-key.pem"),
  strangerCert: join(folder, "stranger.pem"),
  strangerKey: join(folder, "stranger-key.pem"),
};

/** The same files' contents, for in-process servers and clients. */
export const tlsPem = {
  ca: readFileSync(tlsFiles.ca),
  cert: readFileSync(tlsFiles.cert),
  key: readFileSync(tlsFiles.key),
  nextCert: readFileSync(tlsFiles.nextCert),
  nextKey: readFileSync(tlsFiles.nextKey),
  clientCa: readFileSync(tlsFiles.clientCa),
  clientCert: readFileSync(tlsFiles.clientCert),
  clientKey: readFileSync(tlsFiles.clientKey),
  strangerCert: readFileSync(tlsFiles.strangerCert),
  strangerKey: readFileSync(tlsFiles.strangerKey),
};
