/**
 * @natter/client for React Native (the `react-native` export condition and field): the browser
 * entry point, whose `createClient` first checks what Hermes may lack (WebCrypto, a complete URL,
 * TextEncoder) and names the package that provides each, instead of failing later inside a login.
 */
import type { Client, ClientOptions } from './core/client.js';
import type { NoPlugins, PluginMap } from './core/plugin.js';
import { assertRuntime } from './core/runtime-check.js';
import { createClient as createBrowserClient } from './index.js';

export * from './index.js';

/** Creates a client; `client.plugins` is typed from the `plugins` you pass. */
export function createClient<P extends PluginMap = NoPlugins>(options: ClientOptions<P>): Client<P> {
  assertRuntime({ webSocket: options.transports === undefined });
  return createBrowserClient<P>(options);
}
