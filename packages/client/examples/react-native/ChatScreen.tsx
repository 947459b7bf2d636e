// A React Native screen with @natter/client: polyfills first (README, "React Native"), the FAST
// token in the Keychain/Keystore through react-native-keychain (so a restart needs no password),
// CSI tied to AppState (the server holds presence updates while the app is in the background),
// and messages in a list. Not type-checked here (no React Native in this repository): copy it
// into an app that has react, react-native, react-native-keychain and the polyfills installed.
import 'react-native-get-random-values';
import 'react-native-url-polyfill/auto';
import { install } from 'react-native-quick-crypto';
import React, { useEffect, useRef, useState } from 'react';
import { AppState, Button, FlatList, Text, TextInput, View } from 'react-native';
import * as Keychain from 'react-native-keychain';
import {
  carbons,
  createClient,
  csi,
  readMessage,
  type CredentialStore,
  type VisibilitySource,
} from '@natter/client';

install(); // crypto.subtle, before createClient

/** FAST tokens in the platform's protected storage, one entry per account. */
const keychainCredentials: CredentialStore = {
  async get(account) {
    const item = await Keychain.getGenericPassword({ service: `natter:${account}` });
    return item ? JSON.parse(item.password) : undefined;
  },
  async set(account, credentials) {
    await Keychain.setGenericPassword(account, JSON.stringify(credentials), { service: `natter:${account}` });
  },
  async delete(account) {
    await Keychain.resetGenericPassword({ service: `natter:${account}` });
  },
};

/** AppState as CSI's visibility source: active in the foreground, inactive otherwise. */
const appState: VisibilitySource = {
  current: () => (AppState.currentState === 'active' ? 'active' : 'inactive'),
  subscribe: (listener) => {
    const sub = AppState.addEventListener('change', (s) => listener(s === 'active' ? 'active' : 'inactive'));
    return () => sub.remove();
  },
};

export function ChatScreen({ jid, password, peer }: { jid: string; password?: string; peer: string }) {
  const [lines, setLines] = useState<string[]>([]);
  const [text, setText] = useState('');
  const client = useRef<ReturnType<typeof connect>>();

  function connect() {
    const c = createClient({
      jid,
      ...(password ? { password } : {}),
      service: `wss://${jid.split('@')[1]}/xmpp-websocket`,
      credentials: keychainCredentials,
      plugins: { carbons: carbons(), csi: csi({ visibility: appState }) },
    });
    c.on('message', (m) => {
      const v = readMessage(m);
      if (v.body) setLines((l) => [...l, `${v.from}: ${v.body}`]);
    });
    return c;
  }

  useEffect(() => {
    const c = (client.current = connect());
    c.connect()
      .then(() => c.sendPresence())
      .catch((err: Error) => setLines((l) => [...l, `login failed: ${err.message}`]));
    return () => void c.disconnect();
  }, [jid]);

  return (
    <View style={{ flex: 1, padding: 16 }}>
      <FlatList
        data={lines}
        keyExtractor={(_, i) => String(i)}
        renderItem={({ item }) => <Text>{item}</Text>}
      />
      <TextInput value={text} onChangeText={setText} placeholder="message" />
      <Button
        title="Send"
        onPress={() => {
          void client.current?.sendMessage({ to: peer, body: text });
          setLines((l) => [...l, `me: ${text}`]);
          setText('');
        }}
      />
    </View>
  );
}
