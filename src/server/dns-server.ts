import dgram from "node:dgram";
import net, { isIPv6 } from "node:net";
import type { Answer, DecodedPacket, Packet } from "dns-packet";

/** A DNS message without EDNS fits in 512 bytes over UDP (RFC 1035); EDNS lets a resolver say how much more it takes. */
const classicUdpBytes = 512;
const largestUdpBytes = 4096;
const truncated = 1 << 9;
const formatError = 1;
const serverFailure = 2;
/** A TCP connection that asks nothing for this long is closed. */
const tcpIdleMs = 10_000;
/** How many ports port 0 tries before giving up: each try's UDP port may be held for TCP. */
const maxPortAttempts = 10;

/** A DNS server on one address, over UDP and TCP (one port number for both, as resolvers expect). */
export interface DnsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** What a DNS server does with each message, and whom it tells. */
export interface DnsHandlers {
  readonly answer: (query: DecodedPacket) => Packet;
  /** Told of an answer that threw; the resolver got SERVFAIL. */
  readonly onError: (error: unknown) => void;
  /** Told of every reply sent: its response code (RFC 1035 4.1.1) and transport. Default: nobody. */
  readonly onReplied?: (rcode: number, transport: "udp" | "tcp") => void;
}

/**
 * Serves `handlers.answer` on host:port (port 0 picks one free for both
 * protocols); an answer that throws is SERVFAIL, and the error goes to
 * `onError`.
 * dns-packet is loaded now, not at start-up: a registry without DNS does
 * not pay for it. Messages it cannot read get FORMERR when their header
 * can be read, and nothing otherwise; none of them stops the server. An
 * answer too large for the resolver's UDP size goes out truncated (TC), and
 * the resolver asks again over TCP.
 */
export async function startDnsServer(host: string, port: number, { answer, onError, onReplied }: DnsHandlers): Promise<DnsServer> {
  const dns = await import("dns-packet");
  const respond = (message: Buffer, overUdp: boolean): Buffer | undefined => {
    const reply = replyTo(message, overUdp);
    // The response code is the header's low four bits (byte 3).
    if (reply !== undefined) onReplied?.((reply[3] ?? 0) & 0xf, overUdp ? "udp" : "tcp");
    return reply;
  };
  const replyTo = (message: Buffer, overUdp: boolean): Buffer | undefined => {
    let query: DecodedPacket;
    try {
      query = dns.decode(message);
    } catch {
      return message.length < 12 ? undefined : dns.encode({ id: message.readUInt16BE(0), type: "response", flags: formatError });
    }
    const edns = query.additionals?.find((record) => record.type === "OPT");
    // A resolver that sent EDNS gets it back (RFC 6891), saying how much this server takes.
    const ednsReply: Answer[] = edns === undefined ? [] : [{ type: "OPT", name: ".", udpPayloadSize: largestUdpBytes, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
    let response: Packet;
    try {
      response = answer(query);
    } catch (error) {
      onError(error);
      return dns.encode({ id: query.id, type: "response", flags: serverFailure, questions: query.questions ?? [] });
    }
    const bytes = dns.encode({ ...response, additionals: [...(response.additionals ?? []), ...ednsReply] });
    const limit = edns === undefined ? classicUdpBytes : Math.min(Math.max(edns.udpPayloadSize, classicUdpBytes), largestUdpBytes);
    if (!overUdp || bytes.length <= limit) return bytes;
    return dns.encode({ ...response, flags: (response.flags ?? 0) | truncated, answers: [], authorities: [], additionals: ednsReply });
  };

  const openUdp = (): dgram.Socket => {
    const socket = dgram.createSocket(isIPv6(host) ? "udp6" : "udp4");
    socket.on("message", (message, peer) => {
      const reply = respond(message, true);
      if (reply !== undefined) socket.send(reply, peer.port, peer.address);
    });
    // A send to a vanished peer fails with ICMP errors here; the server goes on.
    socket.on("error", () => undefined);
    return socket;
  };

  const connections = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    socket.setTimeout(tcpIdleMs, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const message = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + message.length);
        const reply = respond(message, false);
        if (reply === undefined) return socket.destroy();
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
  });
  // Port 0 takes the port UDP is given for TCP too, where something else may hold it: then another.
  for (let attempt = 1; ; attempt++) {
    const udp = openUdp();
    const boundPort = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(port, host, () => {
        udp.off("error", reject);
        resolve(udp.address().port);
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen({ host, port: boundPort }, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      udp.close();
      if (port === 0 && attempt < maxPortAttempts && (error as NodeJS.ErrnoException).code === "EADDRINUSE") continue;
      throw error;
    }
    return {
      port: boundPort,
      close: () =>
        new Promise<void>((resolve) => {
          udp.close();
          tcp.close(() => resolve());
          for (const socket of connections) socket.destroy();
        }),
    };
  }
}
