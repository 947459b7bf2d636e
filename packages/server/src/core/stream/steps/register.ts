import { xml, type Element } from '@natter/xml';
import { JidError } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import { AccountExistsError } from '../../../accounts/account-store.js';
import type { ServerCore } from '../../server-core.js';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './step.js';
import { resultReply } from '../../iq-dispatcher.js';
import { ipKey } from '../../../util/ip-key.js';

/** Addresses whose registrations are remembered; beyond it the least recently active are forgotten. */
export const REGISTRATION_MEMORY = 100_000;

/**
 * The `register` negotiation step of the client profile. In-band registration (XEP-0077) before
 * authentication: off unless `registration.enabled`,
 * limited per IP address per hour. Password change and account removal after authentication
 * live in the `register` module.
 */
export class Registration {
  private readonly perIp = new Map<string, number[]>();

  constructor(private readonly core: ServerCore) {}

  /**
   * Counts per address key (IPv6 by `limits.ipv6Prefix`). The map is kept in order of last activity
   * (an entry is re-inserted when touched), so bounding it forgets the addresses idle longest — whose
   * hour has most likely passed — and never resets everyone's counters at once.
   */
  private allowed(address: string): boolean {
    const ip = ipKey(address, this.core.config.limits.ipv6Prefix);
    const now = Date.now();
    const hour = 3600_000;
    const recent = (this.perIp.get(ip) ?? []).filter((t) => now - t < hour);
    this.perIp.delete(ip);
    if (recent.length >= this.core.config.registration.perIpPerHour) {
      this.perIp.set(ip, recent);
      return false;
    }
    recent.push(now);
    this.perIp.set(ip, recent);
    for (const oldest of this.perIp.keys()) {
      if (this.perIp.size <= REGISTRATION_MEMORY) break;
      this.perIp.delete(oldest);
    }
    return true;
  }

  async handlePreAuth(stream: ClientNegotiation, iq: Element): Promise<void> {
    const query = iq.getChild('query', NS.register)!;
    const type = iq.attrs.type;
    if (type === 'get') {
      stream.writeElement(
        resultReply(
          iq,
          xml(
            'query',
            { xmlns: NS.register },
            xml('instructions', null, 'Choose a username and password.'),
            xml('username'),
            xml('password'),
          ),
        ),
      );
      return;
    }
    if (type !== 'set') {
      stream.writeElement(errorReply(iq, new StanzaError('bad-request')));
      return;
    }
    if (query.getChild('remove', NS.register)) {
      stream.writeElement(
        errorReply(iq, new StanzaError('not-authorized', { text: 'log in to remove your account' })),
      );
      return;
    }
    const username = query.getChildText('username', NS.register) ?? '';
    const password = query.getChildText('password', NS.register) ?? '';
    if (username === '' || password === '') {
      stream.writeElement(
        errorReply(iq, new StanzaError('not-acceptable', { text: 'username and password are required' })),
      );
      return;
    }
    if (password.length > 1024) {
      stream.writeElement(errorReply(iq, new StanzaError('not-acceptable', { text: 'password too long' })));
      return;
    }
    if (!this.allowed(stream.transport.remoteAddress)) {
      stream.writeElement(
        errorReply(
          iq,
          new StanzaError('resource-constraint', {
            type: 'wait',
            text: 'too many registrations from your address; try later',
          }),
        ),
      );
      return;
    }
    try {
      const account = await this.core.accounts.create(
        username,
        stream.host!.domain,
        password,
        this.core.config.auth.iterations,
      );
      this.core.log.info(
        { account: account.toString(), ip: stream.transport.remoteAddress },
        'account registered in-band',
      );
      stream.writeElement(resultReply(iq, undefined));
    } catch (err) {
      if (err instanceof AccountExistsError)
        stream.writeElement(errorReply(iq, new StanzaError('conflict', { text: 'this username is taken' })));
      else if (err instanceof JidError)
        stream.writeElement(errorReply(iq, new StanzaError('jid-malformed', { text: err.message })));
      else throw err;
    }
  }
}

/** The client profile's `register` step: XEP-0077 before authentication, when enabled. */
export class RegisterStep implements NegotiationStep {
  readonly name = 'register';

  constructor(private readonly stream: ClientNegotiation) {}

  private get enabled(): boolean {
    return this.stream.server.config.registration.enabled;
  }

  features(): Element[] {
    if (!this.enabled || !this.stream.credentialsAllowed()) return [];
    return [xml('register', { xmlns: NS.registerFeature })];
  }

  handle(el: Element): typeof NOT_MINE | void | Promise<void> {
    if (el.name !== 'iq' || !this.enabled || !el.getChild('query', NS.register)) return NOT_MINE;
    if (!this.stream.credentialsAllowed()) {
      this.stream.writeElement(
        errorReply(el, new StanzaError('not-authorized', { text: 'registration requires TLS' })),
      );
      return;
    }
    return this.stream.server.registration.handlePreAuth(this.stream, el);
  }
}
