// The browser build as React Native runs it: no Node built-ins and none of the browser's extras,
// only what Hermes and React Native provide (a WebSocket, fetch, timers; TextEncoder since
// React Native 0.74; no crypto.subtle, and a URL whose getters throw). createClient names what is
// missing and how to provide it; with those polyfills in place the client connects over
// WebSocket to Natter and exchanges messages with a Node client. No real React Native can run on
// this machine, so the bundle runs in a V8 context with exactly those globals.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { webcrypto } from 'node:crypto';
import vm from 'node:vm';
import { build } from 'esbuild';
import WebSocket from 'ws';
import { createClient } from '../src/index.node.js';
import { clientRoot } from './browser-bundle.js';
import { available } from './helpers.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';

/** React Native's URL (Libraries/Blob/URL.js before 0.74): the getters are not implemented. */
class ReactNativeUrl {
  constructor(readonly href: string) {}
  get protocol(): string {
    throw new Error('URL.protocol is not implemented');
  }
  get port(): string {
    throw new Error('URL.port is not implemented');
  }
  get hostname(): string {
    throw new Error('URL.hostname is not implemented');
  }
}

interface Sdk {
  createClient(o: Record<string, unknown>): {
    connect(): Promise<{ toString(): string }>;
    sendMessage(m: { to: string; body: string }): Promise<string>;
    sendPresence(): Promise<void>;
    on(e: 'message', f: (m: { getChildText(n: string): string | undefined }) => void): void;
    disconnect(): Promise<void>;
  };
}

describe('React Native: the browser build with Hermes-like globals', () => {
  let code: string;
  let target: Target;
  before(async () => {
    // As Metro would resolve the package: the `react-native` condition, which selects the browser
    // entry with a check of the runtime.
    const out = await build({
      stdin: { contents: "export * from '@natter/client';", resolveDir: clientRoot, loader: 'ts' },
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'natter',
      platform: 'neutral',
      mainFields: ['react-native', 'browser', 'module', 'main'],
      conditions: ['react-native', 'source'],
      target: 'es2022',
      logLevel: 'silent',
    });
    code = out.outputFiles[0]!.text;
    target = await startNatter({ users: 2 });
  });
  after(async () => {
    await target?.stop();
  });

  /** A context with React Native's globals and `extra`; returns the SDK as the bundle defines it. */
  function load(extra: Record<string, unknown>): Sdk {
    const context = vm.createContext({
      console,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      queueMicrotask,
      fetch,
      AbortController,
      WebSocket,
      ...extra,
    });
    vm.runInContext(`${code}\nglobalThis.natter = natter;`, context);
    return (context as { natter: Sdk }).natter;
  }

  test('without polyfills, createClient names each missing API and the package that provides it', () => {
    const sdk = load({ URL: ReactNativeUrl });
    assert.throws(
      () => sdk.createClient({ service: target.service.ws, jid: target.users[0]!.jid, password: 'x' }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'unsupported-runtime');
        assert.match(err.message, /crypto\.getRandomValues .*react-native-get-random-values/);
        assert.match(err.message, /crypto\.subtle.*react-native-quick-crypto/);
        assert.match(err.message, /TextEncoder and TextDecoder/);
        assert.match(err.message, /react-native-url-polyfill/);
        return true;
      },
    );
  });

  test('with the polyfills, it logs in over WebSocket and exchanges messages with a Node client', async () => {
    const sdk = load({ URL, TextEncoder, TextDecoder, crypto: webcrypto });
    const peer = createClient({ service: target.service.tcp, tls: target.tls, ...target.users[1]! });
    await peer.connect();
    await available(peer);
    const rn = sdk.createClient({
      service: target.service.ws,
      jid: target.users[0]!.jid,
      password: target.users[0]!.password,
      resource: 'phone',
    });
    try {
      const full = (await rn.connect()).toString();
      // Bind2 (XEP-0386): the server's resource starts with the one asked for.
      assert.ok(full.startsWith(`${target.users[0]!.jid}/phone.`), full);
      await rn.sendPresence();
      const got = peer.waitFor('message', {
        filter: (m) => m.getChildText('body') === 'hello from RN',
        timeout: 5000,
      });
      await rn.sendMessage({ to: peer.jid!.toString(), body: 'hello from RN' });
      assert.equal((await got).attr('from'), full);
      const inbox: string[] = [];
      const reply = new Promise<void>((resolve) =>
        rn.on('message', (m) => {
          inbox.push(m.getChildText('body') ?? '');
          if (inbox.includes('hello from Node')) resolve();
        }),
      );
      await peer.sendMessage({ to: full, body: 'hello from Node' });
      await Promise.race([
        reply,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`no reply: ${inbox.join(', ')}`)), 5000),
        ),
      ]);
    } finally {
      await rn.disconnect().catch(() => undefined);
      await peer.disconnect();
    }
  });
});
