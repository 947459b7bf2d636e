// A bot in Node: logs in, stays online through network trouble (stream management, reconnect),
// and answers every chat message with its text reversed, with a delivery receipt.
//
//   XMPP_JID=bot@example.com XMPP_PASSWORD=… node --import tsx examples/node-bot.ts
//
// XMPP_SERVICE (e.g. xmpps://chat.example.com:5223) is optional: without it the endpoints come
// from the domain's DNS SRV records. XMPP_CA_FILE trusts a private CA (a test server's).
import { readFileSync } from 'node:fs';
import { createClient, receipts, reconnect, streamManagement, xml } from '@natter/client';

const jid = process.env.XMPP_JID;
const password = process.env.XMPP_PASSWORD;
if (!jid || !password) {
  console.error('set XMPP_JID and XMPP_PASSWORD');
  process.exit(2);
}
const ca = process.env.XMPP_CA_FILE;

const client = createClient({
  jid,
  password,
  ...(process.env.XMPP_SERVICE ? { service: process.env.XMPP_SERVICE } : {}),
  ...(ca ? { tls: { ca: readFileSync(ca, 'utf8') } } : {}),
  resource: 'bot',
  plugins: {
    streamManagement: streamManagement(),
    reconnect: reconnect(),
    receipts: receipts({ request: false }),
  },
});

client.on('message', (m) => {
  const body = m.getChildText('body');
  const from = m.attr('from');
  if (m.attr('type') !== 'chat' || !body || !from) return;
  void client.send(
    xml('message', { to: from, type: 'chat' }, xml('body', null, [...body].reverse().join(''))),
  );
});
client.on('online', ({ jid: full, resumed }) =>
  console.log(`online as ${full}${resumed ? ' (resumed)' : ''}`),
);
client.on('offline', ({ error }) => {
  if (error) console.log(`offline: ${error.message}`);
});
client.plugins.reconnect.on('stopped', ({ reason }) => {
  if (reason !== 'manual') console.error(`not reconnecting: ${reason}`);
});

await client.connect();
await client.sendPresence();
console.log('ready');

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void client.disconnect().then(() => process.exit(0));
  });
