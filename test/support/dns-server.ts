import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { once } from 'node:events';
import * as packet from 'dns-packet';

/** One SRV record as a zone file writes it: priority, weight, port, target ("." for none). */
export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/**
 * A real, minimal authoritative DNS server on 127.0.0.1 (UDP and TCP on one random port) for SRV
 * lookups in tests: a name in the zone answers its records (possibly none: NODATA), any other name
 * NXDOMAIN. Like a real server it sets TC on a UDP answer over 512 bytes, so the resolver retries
 * over TCP. Every question asked is recorded in `queries` (lower-cased).
 */
export class DnsServer {
  readonly zone = new Map<string, SrvData[]>();
  readonly queries: string[] = [];
  private udp!: Socket;
  private tcp!: Server;
  private readonly connections = new Set<TcpSocket>();
  port = 0;

  /** `"127.0.0.1:<port>"`, for `s2s.dnsServers`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(): Promise<DnsServer> {
    const server = new DnsServer();
    await server.listen();
    return server;
  }

  private async listen(): Promise<void> {
    // Both transports on one port: bind TCP on port 0, then UDP on the same number (free for UDP on
    // loopback in practice; retried with a new port if not).
    for (;;) {
      this.tcp = createServer((socket) => {
        this.connections.add(socket);
        socket.on('close', () => this.connections.delete(socket));
        let buffered = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
            const query = packet.streamDecode(buffered);
            buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
            socket.write(packet.streamEncode(this.answer(query)));
          }
        });
        socket.on('error', () => {});
      });
      this.tcp.listen(0, '127.0.0.1');
      await once(this.tcp, 'listening');
      const address = this.tcp.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      this.port = address.port;
      this.udp = createSocket('udp4');
      this.udp.on('message', (message, remote) => {
        const query = packet.decode(message);
        let response = packet.encode(this.answer(query));
        if (response.length > 512)
          response = packet.encode({ ...this.answer(query), answers: [], flags: packet.TRUNCATED_RESPONSE });
        this.udp.send(response, remote.port, remote.address);
      });
      try {
        this.udp.bind(this.port, '127.0.0.1');
        await once(this.udp, 'listening');
        return;
      } catch {
        this.udp.close();
        this.tcp.close();
      }
    }
  }

  private answer(query: packet.Packet): packet.Packet {
    const question = query.questions?.[0];
    const name = (question?.name ?? '').toLowerCase();
    this.queries.push(name);
    const records = this.zone.get(name);
    const base = {
      id: query.id ?? 0,
      type: 'response' as const,
      questions: query.questions ?? [],
    };
    // The low four bits of the flags are the RCODE: 3 is NXDOMAIN.
    if (records === undefined) return { ...base, flags: packet.AUTHORITATIVE_ANSWER | 3, answers: [] };
    return {
      ...base,
      flags: packet.AUTHORITATIVE_ANSWER,
      answers:
        question?.type === 'SRV'
          ? records.map((data) => ({ type: 'SRV' as const, name: question.name, ttl: 60, data }))
          : [],
    };
  }

  async close(): Promise<void> {
    this.udp.close();
    // The resolver may keep its TCP connection open; a server that closes does not wait for it.
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }
}
