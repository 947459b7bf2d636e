/** @natter/client for Node: TCP (STARTTLS / direct TLS) and WebSocket (`ws`) transports, SQLite storage. */
import { Client, type ClientOptions } from './core/client.js';
import type { NoPlugins, PluginMap } from './core/plugin.js';
import { tcpTransport } from './transport/tcp.node.js';
import { nodeWebSocketTransport } from './transport/websocket.node.js';
import { srvResolver } from './connect/srv.node.js';

export * from './exports.js';
export { tcpTransport, TcpTransport } from './transport/tcp.node.js';
export { nodeWebSocketTransport } from './transport/websocket.node.js';

/** Creates a client; `client.plugins` is typed from the `plugins` you pass. */
export function createClient<P extends PluginMap = NoPlugins>(options: ClientOptions<P>): Client<P> {
  return new Client<P>({
    ...options,
    transports: options.transports ?? [tcpTransport(), nodeWebSocketTransport()],
    ...(options.service === undefined ? { discover: options.discover ?? srvResolver() } : {}),
  });
}
export { srvResolver, orderSrv, type SrvOptions } from './connect/srv.node.js';
export { sqliteRosterStorage } from './roster/sqlite-roster-storage.node.js';
export { openSqlite, closeSqlite, type SqliteSource, type SqliteDatabase } from './storage/sqlite.node.js';
export { sqliteVCardStorage } from './vcard/sqlite-vcard-storage.node.js';
export { sqliteMessageStore } from './mam/sqlite-message-store.node.js';
// Takes precedence over the browser `httpUpload` re-exported from exports.ts (explicit exports win over `export *`).
export { httpUpload, nodeHttpPut, type NodeHttpPutOptions } from './http-upload/xep-0363-http-upload.node.js';
