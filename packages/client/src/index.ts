/**
 * @natter/client — browser-safe entry point (WebSocket transport only). React Native's
 * (`index.react-native.ts`, the `react-native` export condition) adds a check of the runtime. In
 * Node, the `node` export condition selects `index.node.ts`, which adds TCP/TLS, the `ws`
 * WebSocket and SQLite storage.
 */
import { Client, type ClientOptions } from './core/client.js';
import type { NoPlugins, PluginMap } from './core/plugin.js';
import { browserWebSocketTransport } from './transport/websocket.js';

export * from './exports.js';

/**
 * Creates a client; `client.plugins` is typed from the `plugins` you pass. Without `service`, give
 * `discover: hostMetaResolver()` to find the WebSocket endpoint in the domain's host-meta
 * (XEP-0156): it is opt-in here, so that apps that know their endpoint do not carry it.
 */
export function createClient<P extends PluginMap = NoPlugins>(options: ClientOptions<P>): Client<P> {
  return new Client<P>({ ...options, transports: options.transports ?? [browserWebSocketTransport()] });
}
