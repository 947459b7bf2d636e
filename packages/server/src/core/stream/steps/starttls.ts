import { serialize, xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './step.js';

/** STARTTLS (RFC 6120 §5): offered while the transport can upgrade, required when credentials need TLS. */
export class StartTlsStep implements NegotiationStep {
  readonly name = 'starttls';

  constructor(private readonly stream: ClientNegotiation) {}

  features(): Element[] {
    if (!this.stream.transport.canStartTls) return [];
    return [xml('starttls', { xmlns: NS.tls }, !this.stream.credentialsAllowed() && xml('required'))];
  }

  handle(el: Element): typeof NOT_MINE | Promise<void> {
    if (el.xmlns !== NS.tls || el.name !== 'starttls') return NOT_MINE;
    return this.start();
  }

  private async start(): Promise<void> {
    const { stream } = this;
    const transport = stream.transport;
    if (!transport.canStartTls) {
      stream.writeElement(xml('failure', { xmlns: NS.tls }));
      stream.close();
      return;
    }
    stream.tlsStarting();
    transport.pause();
    try {
      await transport.startTls(serialize(xml('proceed', { xmlns: NS.tls }), NS.client));
    } catch (err) {
      stream.server.log.info({ err: (err as Error).message, stream: stream.id }, 'TLS handshake failed');
      transport.destroy();
      return;
    }
    stream.tlsEstablished();
  }
}
