// Real XMPP servers with the gateway's domain on their component port, and real user clients.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, xml, type Client, type Element, type TlsOptions } from '@natter/client';
import { startProsody } from '../../../client/test/prosody.js';
import { startEjabberd } from '../../../component/test/ejabberd.js';

export const GATEWAY_DOMAIN = 'mqtt.localhost';
export const GATEWAY_SECRET = 'mqtt-gateway-secret';
const WAIT = 15_000;

export interface Server {
  name: string;
  /** Where users connect (c2s). */
  service: string;
  tls?: TlsOptions;
  /** The component port, as `xmpp://127.0.0.1:port`. */
  componentService: string;
  users: { jid: string; password: string }[];
  stop(): Promise<void>;
}

export const servers: { name: string; start(): Promise<Server> }[] = [
  {
    // Natter in-process: port 0, a temporary data folder, its own certificate.
    name: 'natter',
    async start() {
      // Imported by name, only for tests: the gateway's sources never depend on the server.
      const { startServer } = (await import('@natter/server' as string)) as typeof import('@natter/server');
      const dir = await mkdtemp(join(tmpdir(), 'natter-mqtt-server-'));
      const server = await startServer({
        hosts: ['localhost'],
        dataDir: dir,
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'component', port: 0, host: '127.0.0.1' },
        ],
        components: { [GATEWAY_DOMAIN]: { secret: GATEWAY_SECRET } },
        limits: { disabled: true },
        log: { level: 'silent' },
      });
      const users = Array.from({ length: 40 }, (_, i) => ({
        jid: `user${i + 1}@localhost`,
        password: `pw-${i + 1}-secret`,
      }));
      for (const u of users) await server.addUser(u.jid.split('@')[0]!, u.password);
      return {
        name: 'natter',
        service: `xmpp://127.0.0.1:${server.port('c2s')}`,
        tls: { ca: await readFile(server.certificate.cert, 'utf8') },
        componentService: `xmpp://127.0.0.1:${server.port('component')}`,
        users,
        async stop() {
          await server.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'prosody',
    async start() {
      const p = await startProsody({ users: 40, components: { [GATEWAY_DOMAIN]: GATEWAY_SECRET } });
      return {
        name: 'prosody',
        service: p.service.tcp,
        tls: p.tls,
        componentService: `xmpp://127.0.0.1:${p.componentPort}`,
        users: p.users,
        stop: () => p.stop(),
      };
    },
  },
  {
    name: 'ejabberd',
    async start() {
      const e = await startEjabberd({ users: 12, components: { [GATEWAY_DOMAIN]: GATEWAY_SECRET } });
      return {
        name: 'ejabberd',
        service: e.service,
        componentService: `xmpp://127.0.0.1:${e.componentPort}`,
        users: e.users,
        stop: () => e.stop(),
      };
    },
  },
];

/** A connected user whose incoming stanzas are kept until a test takes them. */
export interface User {
  client: Client;
  /** Bare JID. */
  jid: string;
  /** Full JID of this session. */
  full: string;
  /** The first stanza (already received, or within 15 s) that matches; each is taken once. */
  receive(match: (el: Element) => boolean): Promise<Element>;
  /** Stanzas received and not taken yet. */
  readonly inbox: Element[];
  /** A round trip to the user's server: whatever was routed to this user before has arrived after it. */
  sync(): Promise<void>;
}

export async function connectUser(server: Server, account: { jid: string; password: string }): Promise<User> {
  const client = createClient({ service: server.service, tls: server.tls, ...account, resource: 'test' });
  const inbox: Element[] = [];
  const waiters = new Set<(el: Element) => boolean>();
  client.on('stanza', (el) => {
    for (const w of waiters) if (w(el)) return;
    inbox.push(el);
  });
  await client.connect();
  await client.sendPresence();
  const domain = account.jid.split('@')[1]!;
  return {
    client,
    jid: account.jid,
    full: `${account.jid}/test`,
    inbox,
    receive: (match) => {
      const i = inbox.findIndex(match);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const w = (el: Element): boolean => {
          if (!match(el)) return false;
          waiters.delete(w);
          clearTimeout(timer);
          resolve(el);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`nothing matching arrived within ${WAIT} ms; got:\n${inbox.join('\n')}`));
        }, WAIT);
        waiters.add(w);
      });
    },
    sync: async () => {
      const query = xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' });
      await client.iq(xml('iq', { type: 'get', to: domain }, query)).catch(() => {});
    },
  };
}

/** A matcher on a stanza's name and attributes (`undefined`: the attribute is absent). */
export function is(name: string, attrs: Record<string, string | undefined>): (el: Element) => boolean {
  return (el) =>
    el.name === name &&
    Object.entries(attrs).every(([k, v]) => (v === undefined ? !el.attr(k) : el.attr(k) === v));
}

/** The stanza error condition of an error stanza. */
export function errorCondition(el: Element): string | undefined {
  return el
    .getChild('error')
    ?.elements()
    .find((e) => e.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && e.name !== 'text')?.name;
}
