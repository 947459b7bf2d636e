// What a client writes and reads on the wire, as the server sees it (after TLS): transports that
// record every write and every chunk read, so that a test can check which elements a login sent
// and count its round trips.
import {
  nodeWebSocketTransport,
  tcpTransport,
  type Transport,
  type TransportFactory,
} from '../src/index.node.js';

export interface Traffic {
  /** Every write (`out`: one stream header or one element) and every read chunk (`in`), in order. */
  readonly log: { dir: 'out' | 'in'; data: string }[];
  /** Transports to pass as the client's `transports` option. */
  readonly transports: TransportFactory[];
  /** A position in the log, to look at what comes after it. */
  mark(): number;
  /** The elements written since `from`. */
  sent(from?: number): string[];
  /**
   * Round trips since `from`: each time the client waited for the server, counted when data comes
   * in after the client wrote (TCP and TLS handshakes are below this layer and not counted).
   */
  roundTrips(from?: number, to?: number): number;
}

export function recordTraffic(): Traffic {
  const log: Traffic['log'] = [];
  const decoder = new TextDecoder();
  const wrap = (inner: TransportFactory): TransportFactory => ({
    protocols: inner.protocols,
    create(url, ctx): Transport {
      const t = inner.create(url, ctx);
      const send = t.send.bind(t);
      t.send = (data) => {
        log.push({ dir: 'out', data });
        send(data);
      };
      t.events.on('data', (d) =>
        log.push({ dir: 'in', data: typeof d === 'string' ? d : decoder.decode(d) }),
      );
      return t;
    },
  });
  return {
    log,
    transports: [wrap(tcpTransport()), wrap(nodeWebSocketTransport())],
    mark: () => log.length,
    sent: (from = 0) =>
      log
        .slice(from)
        .filter((e) => e.dir === 'out')
        .map((e) => e.data),
    roundTrips(from = 0, to = log.length) {
      let n = 0;
      let last: 'out' | 'in' | undefined;
      for (const e of log.slice(from, to)) {
        if (e.dir === 'in' && last === 'out') n++;
        last = e.dir;
      }
      return n;
    },
  };
}
