import { xml, type Element } from '@natter/xml';
import { NS, chooseClientMechanism, fromBase64, toBase64 } from '@natter/protocol';

/** What a test client offers the SASL exchange: its last stream features, a writer and a reader. */
export interface SaslPeer {
  features: Element | undefined;
  send(el: Element): void;
  receive(match: (e: Element) => boolean): Promise<Element>;
}

/**
 * RFC 6120 §6 from the client's side, with the best mechanism offered (or `mechanism`): resolves
 * on `<success/>` (the caller restarts the stream its own way), throws on `<failure/>` with the
 * condition and text.
 */
export async function saslExchange(
  peer: SaslPeer,
  user: string,
  password: string,
  mechanism?: string,
): Promise<void> {
  const offered =
    peer.features
      ?.getChild('mechanisms', NS.sasl)
      ?.getChildren('mechanism', NS.sasl)
      .map((m) => m.text()) ?? [];
  const mech = chooseClientMechanism(
    mechanism ? [mechanism] : offered,
    { username: user, password },
    { allowPlain: true },
  );
  if (!mech) throw new Error(`no usable mechanism among ${offered.join(', ')}`);
  const initial = await mech.initial();
  peer.send(xml('auth', { xmlns: NS.sasl, mechanism: mech.name }, initial.length ? toBase64(initial) : '='));
  for (;;) {
    const el = await peer.receive((e) => e.xmlns === NS.sasl);
    if (el.name === 'challenge') {
      const r = await mech.challenge(fromBase64(el.text()));
      peer.send(xml('response', { xmlns: NS.sasl }, r.length ? toBase64(r) : ''));
    } else if (el.name === 'success') {
      await mech.success(el.text() ? fromBase64(el.text()) : null);
      return;
    } else {
      const cond = el.elements().find((c) => c.name !== 'text')?.name ?? 'unknown';
      throw Object.assign(new Error(`SASL failure: ${cond}`), {
        condition: cond,
        text: el.getChildText('text') ?? '',
      });
    }
  }
}
