import WebSocket from 'ws';
import { WebSocketTransport, type WebSocketLike } from './websocket.js';
import type { TransportFactory } from './transport.js';

/** WebSocket transport for Node, on the `ws` package (honours the `tls` options). */
export function nodeWebSocketTransport(): TransportFactory {
  return {
    protocols: ['ws:', 'wss:'],
    create(url, ctx) {
      return new WebSocketTransport(
        url,
        ctx,
        (u, protocols) =>
          new WebSocket(u, protocols, {
            rejectUnauthorized: ctx.tls.rejectUnauthorized ?? true,
            ca: ctx.tls.ca,
          }) as unknown as WebSocketLike,
      );
    },
  };
}
