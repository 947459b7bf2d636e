// Real XMPP servers with the gateway's domain on their component port, and real user clients.
import { createClient, xml, type Client, type Element, type TlsOptions } from '@natter/client';
import { startHarness } from '@natter/component/testing';
import { startProsody } from '../../../client/test/prosody.js';
import { startEjabberd } from '../../../component/test/ejabberd.js';

export const GATEWAY_DOMAIN = 'mqtt.localhost';
export const GATEWAY_SECRET = 'mqtt-gateway-secret';
const WAIT = 15_000;

export interface Server {
  name: string;
  /** The component port, as `xmpp://127.0.0.1:port`. */
  componentService: string;
  /** A new account, logged in, with initial presence sent. */
  user(): Promise<User>;
  stop(): Promise<void>;
}

/** Users from a list of accounts on a server started outside this process. */
function accounts(
  list: { jid: string; password: string }[],
  service: string,
  tls?: TlsOptions,
): () => Promise<User> {
  let next = 0;
  return async () => {
    const account = list[next++];
    if (!account) throw new Error(`only ${list.length} accounts`);
    const client = createClient({ service, tls, ...account, resource: 'test' });
    const user = wrapClient(client, account.jid);
    await client.connect();
    await client.sendPresence();
    return user;
  };
}

export const servers: { name: string; start(): Promise<Server> }[] = [
  {
    // Natter in-process, through @natter/component's test harness (no system packages needed).
    name: 'natter',
    async start() {
      const h = await startHarness({ domain: GATEWAY_DOMAIN, secret: GATEWAY_SECRET, connect: false });
      let n = 0;
      return {
        name: 'natter',
        componentService: h.componentOptions.service,
        async user() {
          const name = `user${++n}`;
          const client = await h.user(name, { resource: 'test' });
          return wrapClient(client, `${name}@${h.host}`);
        },
        stop: () => h.stop(),
      };
    },
  },
  {
    name: 'prosody',
    async start() {
      const p = await startProsody({ users: 40, components: { [GATEWAY_DOMAIN]: GATEWAY_SECRET } });
      return {
        name: 'prosody',
        componentService: `xmpp://127.0.0.1:${p.componentPort}`,
        user: accounts(p.users, p.service.tcp, p.tls),
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
        componentService: `xmpp://127.0.0.1:${e.componentPort}`,
        user: accounts(e.users, e.service),
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

/** Keeps what a client receives from now on, for a test to take. */
export function wrapClient(client: Client, jid: string): User {
  const inbox: Element[] = [];
  const waiters = new Set<(el: Element) => boolean>();
  client.on('stanza', (el) => {
    for (const w of waiters) if (w(el)) return;
    inbox.push(el);
  });
  const domain = jid.split('@')[1]!;
  return {
    client,
    jid,
    full: `${jid}/test`,
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
