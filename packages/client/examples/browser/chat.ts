// A chat page in the browser: log in with a JID and a password (the WebSocket endpoint comes from
// the domain's host-meta, XEP-0156), keep a FAST token in localStorage so that a reload needs no
// password, fetch the last messages of the archive (XEP-0313) into IndexedDB, follow the other
// devices of the account (carbons), and send and receive messages.
//
// Bundle it with any bundler, e.g. `npx esbuild examples/browser/chat.ts --bundle --format=esm
// --outfile=examples/browser/chat.js`, and open examples/browser/index.html from a web server.
import {
  carbons,
  createClient,
  hostMetaResolver,
  indexedDbMessageStore,
  mam,
  readMessage,
  webStorageCredentials,
} from '@natter/client';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const log = $<HTMLOListElement>('log');

function show(line: string): void {
  const li = document.createElement('li');
  li.textContent = line;
  log.append(li);
}

function start(jid: string, password: string | undefined) {
  const client = createClient({
    jid,
    discover: hostMetaResolver(),
    ...(password ? { password } : {}),
    credentials: webStorageCredentials(),
    plugins: {
      mam: mam({ store: indexedDbMessageStore(), autoCatchUp: true }),
      carbons: carbons(),
    },
  });
  client.on('message', (m) => {
    const v = readMessage(m);
    if (v.body) show(`${v.from}: ${v.body}`);
  });
  client.plugins.carbons.on('sent', ({ message, peer }) => {
    const v = readMessage(message);
    if (v.body) show(`me (another device) → ${peer}: ${v.body}`);
  });
  client.plugins.mam.on('stored', (m) => {
    if (m.body) show(`(history) ${m.from}: ${m.body}`);
  });
  return client;
}

async function connect(client: ReturnType<typeof start>) {
  await client.connect();
  await client.sendPresence();
  show(`online as ${client.jid}`);
}

$<HTMLFormElement>('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const jid = $<HTMLInputElement>('jid').value;
  const password = $<HTMLInputElement>('password').value || undefined;
  const client = start(jid, password);
  connect(client).catch((err: Error) => show(`login failed: ${err.message}`));
  $<HTMLFormElement>('send').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = $<HTMLInputElement>('to').value;
    const body = $<HTMLInputElement>('body').value;
    client.sendMessage({ to, body }).then(
      () => show(`me → ${to}: ${body}`),
      (err: Error) => show(`not sent: ${err.message}`),
    );
  });
});
