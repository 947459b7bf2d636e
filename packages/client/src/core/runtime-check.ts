// What the SDK needs of its runtime, checked once at `createClient` so that a missing API is
// named with its remedy, not met later as a TypeError inside a login (React Native's Hermes has
// no `crypto.subtle`; older Hermes no TextEncoder).
import { ClientError } from './errors.js';

export interface RuntimeNeeds {
  /** The transports in use need a global WebSocket (browsers, React Native). */
  webSocket: boolean;
}

/** The APIs missing from this runtime, each with what provides it. */
export function missingApis(needs: RuntimeNeeds, g: Record<string, unknown> = globalThis): string[] {
  const missing: string[] = [];
  const crypto = g.crypto as { getRandomValues?: unknown; subtle?: { digest?: unknown } } | undefined;
  if (typeof crypto?.getRandomValues !== 'function')
    missing.push('crypto.getRandomValues (React Native: import "react-native-get-random-values" first)');
  if (typeof crypto?.subtle?.digest !== 'function')
    missing.push(
      'crypto.subtle, WebCrypto for SCRAM, FAST and entity capabilities (React Native: install "react-native-quick-crypto" and call its install() before createClient)',
    );
  if (typeof g.TextEncoder !== 'function' || typeof g.TextDecoder !== 'function')
    missing.push(
      'TextEncoder and TextDecoder (React Native before 0.74: a polyfill such as "fast-text-encoding")',
    );
  if (needs.webSocket && typeof g.WebSocket !== 'function') missing.push('WebSocket');
  // React Native's own URL throws "not implemented" from `protocol`, `port`, `hostname`.
  let url = false;
  try {
    const u = new (g.URL as typeof URL)('wss://example.com:5281/xmpp-websocket');
    url = u.protocol === 'wss:' && u.port === '5281' && u.hostname === 'example.com';
  } catch {
    url = false;
  }
  if (!url)
    missing.push('a complete URL implementation (React Native: import "react-native-url-polyfill/auto")');
  return missing;
}

/** Throws `unsupported-runtime` naming every missing API and its remedy. */
export function assertRuntime(needs: RuntimeNeeds, g: Record<string, unknown> = globalThis): void {
  const missing = missingApis(needs, g);
  if (missing.length > 0)
    throw new ClientError(
      'unsupported-runtime',
      `createClient: this runtime lacks ${missing.join('; ')}. See the README, "React Native".`,
    );
}
