import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { normalizeAddress, type TrustedProxies } from './forwarded.js';

/** PROXY protocol version 2 (HAProxy's proxy-protocol.txt §2.2): the 12-byte signature. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** Signature, version/command, family/transport, 2-byte length. */
const FIXED = 16;

export type ProxyHeader =
  /** PROXY command with TCP over IPv4/IPv6: the client's address and port. */
  | { command: 'proxy'; address: string; port: number; length: number }
  /** LOCAL command (the proxy's own health check) or an address family we do not use: keep the peer. */
  | { command: 'local'; length: number };

export class ProxyHeaderError extends Error {}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The URL parser writes the canonical (compressed) form.
  return normalizeAddress(new URL(`http://[${groups.join(':')}]/`).hostname);
}

/**
 * Parses a v2 header at the start of `buf`. Returns undefined while more bytes are needed; throws
 * ProxyHeaderError for anything that is not a valid v2 header or is longer than `maxBytes`.
 */
export function parseProxyV2(buf: Buffer, maxBytes = 4096): ProxyHeader | undefined {
  const sig = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, sig).equals(PROXY_V2_SIGNATURE.subarray(0, sig)))
    throw new ProxyHeaderError('no PROXY protocol v2 signature');
  if (buf.length < FIXED) return undefined;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyHeaderError(`PROXY protocol version ${verCmd >> 4} is not 2`);
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyHeaderError(`unknown PROXY command ${command}`);
  const family = buf[13]! >> 4;
  const transport = buf[13]! & 0x0f;
  const length = FIXED + buf.readUInt16BE(14);
  if (length > maxBytes) throw new ProxyHeaderError(`PROXY header of ${length} bytes is too long`);
  if (buf.length < length) return undefined;
  if (command === 0) return { command: 'local', length };
  const body = buf.subarray(FIXED, length);
  // TCP (STREAM) over IPv4 (12 address bytes) or IPv6 (36); TLVs may follow and are ignored.
  if (family === 1 && transport === 1) {
    if (body.length < 12) throw new ProxyHeaderError('PROXY header too short for IPv4 addresses');
    return {
      command: 'proxy',
      address: [...body.subarray(0, 4)].join('.'),
      port: body.readUInt16BE(8),
      length,
    };
  }
  if (family === 2 && transport === 1) {
    if (body.length < 36) throw new ProxyHeaderError('PROXY header too short for IPv6 addresses');
    return { command: 'proxy', address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32), length };
  }
  // UNSPEC or UNIX: the spec says to accept the connection and use the real connection endpoints.
  return { command: 'local', length };
}

/**
 * Reads the PROXY v2 header off `socket` (within `timeoutMs`, at most `maxBytes`), puts back the
 * bytes after it, and leaves the socket paused. Resolves with the client's address, or undefined
 * after having destroyed the socket (bad or missing header, timeout, early close).
 */
export function readProxyHeader(
  socket: Socket,
  opts: { timeoutMs: number; maxBytes?: number },
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (address: string | undefined, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (address === undefined) {
        socket.destroy();
      } else {
        socket.pause();
        if (rest?.length) socket.unshift(rest);
      }
      resolve(address);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let header: ProxyHeader | undefined;
      try {
        header = parseProxyV2(buf, opts.maxBytes);
      } catch {
        done(undefined);
        return;
      }
      if (!header) return;
      const peer = normalizeAddress(socket.remoteAddress) || (socket.remoteAddress ?? '');
      done(header.command === 'proxy' ? header.address : peer, buf.subarray(header.length));
    };
    const onClose = () => done(undefined);
    const timer = setTimeout(() => done(undefined), opts.timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => {
      /* 'close' follows */
    });
  });
}

/**
 * Client addresses learnt from PROXY headers, by connection. Keyed by the TCP peer's address and
 * port, which a TLS socket wrapping the connection reports too.
 */
export class ProxiedAddresses {
  private readonly byPeer = new Map<string, string>();

  private static key(socket: Socket): string {
    return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? 0}`;
  }

  set(socket: Socket, address: string): void {
    const key = ProxiedAddresses.key(socket);
    this.byPeer.set(key, address);
    socket.once('close', () => this.byPeer.delete(key));
  }

  /** The client's address for a connection: from its PROXY header, else the TCP peer. */
  of(socket: Socket): string {
    return this.byPeer.get(ProxiedAddresses.key(socket)) ?? socket.remoteAddress ?? '';
  }
}

/**
 * A front server for a listener with `proxyProtocol: true`: accepts connections only from trusted
 * proxies, reads the PROXY v2 header, records the client's address, then hands the connection to
 * `inner` (a net or TLS server that does not listen itself) as if it had accepted it.
 */
export function proxyProtocolFront(
  inner: NetServer,
  opts: {
    trusted: TrustedProxies;
    addresses: ProxiedAddresses;
    timeoutMs: number;
    /** Resume reading after the hand-over (a plain TCP server; TLS reads the socket itself). */
    resume: boolean;
  },
): NetServer {
  return createNetServer((socket) => {
    if (!opts.trusted.trusts(socket.remoteAddress)) {
      socket.destroy();
      return;
    }
    void readProxyHeader(socket, { timeoutMs: opts.timeoutMs }).then((address) => {
      if (address === undefined || socket.destroyed) return;
      opts.addresses.set(socket, address);
      inner.emit('connection', socket);
      if (opts.resume && !socket.destroyed) socket.resume();
    });
  });
}
