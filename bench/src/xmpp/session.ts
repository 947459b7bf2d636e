/**
 * One client-to-server XMPP session over a raw socket: stream negotiation (RFC 6120), optional
 * STARTTLS or direct TLS (XEP-0368), SASL SCRAM or PLAIN, resource binding, optional roster get
 * (RFC 6121 §2.2) and initial presence. `login()` resolves when the server has answered an IQ sent
 * right after the initial presence, i.e. once the presence has been processed in order.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { Framer, attr, childText, elementName } from './framer.js';
import { SCRAM_MECHS, ScramClient } from './scram.js';

export type TlsMode = 'none' | 'starttls' | 'direct';

export interface SessionOptions {
  host: string;
  port: number;
  localAddress?: string;
  domain: string;
  user: string;
  password: string;
  resource: string;
  tls: TlsMode;
  /** Forced SASL mechanism, otherwise the best offered of SCRAM-SHA-256, SCRAM-SHA-1, PLAIN. */
  mech?: string;
  rosterGet?: boolean;
  presence?: boolean;
  timeoutMs: number;
}

export class LoginError extends Error {
  override readonly name = 'LoginError';
  constructor(
    readonly condition: string,
    message: string,
  ) {
    super(message);
  }
}

type Phase = 'connecting' | 'tls' | 'auth' | 'bind' | 'session' | 'roster' | 'ready' | 'closed';

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

export class XmppSession {
  socket: Socket | null = null;
  phase: Phase = 'connecting';
  mechUsed = '';
  /** Called for every first-level element once the session is ready. */
  onElement: ((xml: string) => void) | null = null;
  onClose: (() => void) | null = null;

  private decoder = new StringDecoder('utf8');
  private readonly framer: Framer;
  private secured = false;
  private authed = false;
  private scram: ScramClient | null = null;
  private resolve!: () => void;
  private reject!: (e: Error) => void;
  private timer: NodeJS.Timeout | null = null;
  private settled = false;

  constructor(readonly o: SessionOptions) {
    this.framer = new Framer({
      streamOpen: () => {},
      element: (xml) => this.handle(xml),
      streamClose: () => this.destroy(),
    });
  }

  login(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.timer = setTimeout(
        () =>
          this.fail('timeout', `login did not finish within ${this.o.timeoutMs} ms (phase ${this.phase})`),
        this.o.timeoutMs,
      );
      const o = this.o;
      const s =
        o.tls === 'direct'
          ? tlsConnect({
              host: o.host,
              port: o.port,
              ...(o.localAddress ? { localAddress: o.localAddress } : {}),
              servername: o.domain,
              rejectUnauthorized: false,
              ALPNProtocols: ['xmpp-client'],
            })
          : netConnect({
              host: o.host,
              port: o.port,
              ...(o.localAddress ? { localAddress: o.localAddress } : {}),
            });
      if (o.tls === 'direct') this.secured = true;
      this.attach(s, o.tls === 'direct' ? 'secureConnect' : 'connect');
    });
  }

  private attach(s: Socket, readyEvent: string): void {
    this.socket = s;
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => this.framer.push(this.decoder.write(d)));
    s.once(readyEvent, () => this.openStream());
    s.on('error', (e: Error) => this.fail('socket', e.message));
    s.on('close', () => {
      if (this.socket !== s) return;
      this.fail('closed', `connection closed by server (phase ${this.phase})`);
      this.phase = 'closed';
      this.onClose?.();
    });
  }

  private openStream(): void {
    this.framer.reset();
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${this.o.domain}' version='1.0' xml:lang='en'>`,
    );
  }

  write(data: string): void {
    this.socket?.write(data);
  }

  private handle(xml: string): void {
    if (this.phase === 'ready') {
      this.onElement?.(xml);
      return;
    }
    const name = elementName(xml);
    if (name === 'stream:error') {
      this.fail('stream-error', `stream error in phase ${this.phase}: ${xml.slice(0, 300)}`);
      return;
    }
    if (name === 'stream:features' || name === 'features') return this.features(xml);
    switch (this.phase) {
      case 'tls':
        if (name === 'proceed') return this.upgrade();
        return this.fail('tls', `STARTTLS refused: ${xml.slice(0, 200)}`);
      case 'auth':
        return void this.sasl(name, xml).catch((e: Error) => this.fail('sasl', e.message));
      case 'bind':
      case 'session':
      case 'roster':
        if (name === 'iq') return this.iqResult(xml);
        this.onElement?.(xml); // presences arriving while the login finishes
        return;
      default:
    }
  }

  private features(xml: string): void {
    if (!this.secured && this.o.tls === 'starttls') {
      if (!xml.includes(NS_TLS)) return this.fail('tls', 'server does not offer STARTTLS');
      this.phase = 'tls';
      this.write(`<starttls xmlns='${NS_TLS}'/>`);
      return;
    }
    if (!this.authed) {
      const offered: string[] = [];
      const re = /<mechanism>([^<]+)<\/mechanism>/g;
      for (let m = re.exec(xml); m; m = re.exec(xml)) offered.push(m[1]!);
      const pick = this.o.mech
        ? offered.includes(this.o.mech)
          ? this.o.mech
          : undefined
        : ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'].find((m) => offered.includes(m));
      if (!pick) return this.fail('sasl', `no usable SASL mechanism among ${offered.join(' ')}`);
      this.mechUsed = pick;
      this.phase = 'auth';
      const hash = SCRAM_MECHS[pick];
      if (hash) {
        this.scram = new ScramClient(hash, this.o.user, this.o.password);
        this.write(`<auth xmlns='${NS_SASL}' mechanism='${pick}'>${this.scram.first()}</auth>`);
      } else {
        const plain = Buffer.from(`\0${this.o.user}\0${this.o.password}`).toString('base64');
        this.write(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${plain}</auth>`);
      }
      return;
    }
    this.phase = 'bind';
    this.sessionRequired =
      xml.includes('urn:ietf:params:xml:ns:xmpp-session') && !/xmpp-session'?"?\s*>\s*<optional/.test(xml);
    this.write(
      `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${this.o.resource}</resource></bind></iq>`,
    );
  }

  private sessionRequired = false;

  private upgrade(): void {
    const plain = this.socket!;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    this.secured = true;
    this.decoder = new StringDecoder('utf8');
    this.framer.reset();
    const t = tlsConnect({ socket: plain, servername: this.o.domain, rejectUnauthorized: false });
    plain.on('error', () => {});
    this.attach(t, 'secureConnect');
  }

  private async sasl(name: string, xml: string): Promise<void> {
    if (name === 'challenge') {
      if (!this.scram) throw new Error('unexpected SASL challenge');
      const payload = childTextOfSelf(xml);
      this.write(`<response xmlns='${NS_SASL}'>${await this.scram.final(payload)}</response>`);
    } else if (name === 'success') {
      if (this.scram && !this.scram.verify(childTextOfSelf(xml)))
        throw new Error('server signature mismatch');
      this.authed = true;
      this.decoder = new StringDecoder('utf8');
      this.openStream();
    } else if (name === 'failure') {
      throw new LoginError('not-authorized', `SASL failure for ${this.o.user}: ${xml.slice(0, 200)}`);
    }
  }

  private iqResult(xml: string): void {
    const id = attr(xml, 'id');
    const type = attr(xml, 'type');
    if (id === 'bind') {
      if (type !== 'result') return this.fail('bind', `bind failed: ${xml.slice(0, 200)}`);
      if (this.sessionRequired) {
        this.phase = 'session';
        this.write(`<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
        return;
      }
      return this.afterBind();
    }
    if (id === 'sess') return this.afterBind();
    if (id === 'roster') return this.sendPresence();
    if (id === 'ping') return this.done();
  }

  private afterBind(): void {
    if (this.o.rosterGet) {
      this.phase = 'roster';
      this.write(`<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>`);
      return;
    }
    this.sendPresence();
  }

  private sendPresence(): void {
    this.phase = 'roster';
    // The ping's answer tells us the presence before it has been processed.
    this.write(
      `${this.o.presence === false ? '' : '<presence/>'}<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>`,
    );
  }

  private done(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.phase = 'ready';
    this.resolve();
  }

  private fail(condition: string, message: string): void {
    if (this.settled) {
      if (condition !== 'closed') this.destroy();
      return;
    }
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.destroy();
    this.reject(new LoginError(condition, message));
  }

  /** Polite close: end the stream, then the socket. */
  close(): void {
    if (!this.socket || this.phase === 'closed') return;
    this.phase = 'closed';
    try {
      this.socket.end('</stream:stream>');
    } catch {
      /* already gone */
    }
    const s = this.socket;
    setTimeout(() => s.destroy(), 2000).unref();
  }

  destroy(): void {
    this.phase = 'closed';
    this.socket?.destroy();
  }
}

function childTextOfSelf(xml: string): string {
  const gt = xml.indexOf('>');
  if (xml.charCodeAt(gt - 1) === 47) return '';
  const end = xml.lastIndexOf('</');
  const t = xml.slice(gt + 1, end).trim();
  return t === '=' ? '' : t;
}

export { childText };
