import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { TestClient } from '../../support/test-client.js';

/** Client-side XEP-0198 bookkeeping for a TestClient: counts stanzas, answers `<r/>`, records message bodies. */
export interface SmTracker {
  /** Stanzas received since `<enabled/>` (or since the resumption, continuing the count). */
  h: number;
  autoAck: boolean;
  counting: boolean;
  bodies: string[];
  /** Every SM nonza received, in order. */
  nonzas: Element[];
}

export function trackSm(c: TestClient, start?: { h: number }): SmTracker {
  const t: SmTracker = {
    h: start?.h ?? 0,
    autoAck: true,
    counting: start !== undefined,
    bodies: [],
    nonzas: [],
  };
  const target = c as unknown as { onElement(el: Element): void };
  const orig = target.onElement.bind(c);
  target.onElement = (el: Element) => {
    if (el.xmlns === NS.sm) {
      t.nonzas.push(el);
      if (el.name === 'r') {
        if (t.autoAck && !c.closed) c.send(xml('a', { xmlns: NS.sm, h: String(t.h) }));
        return;
      }
      if (el.name === 'enabled' || el.name === 'resumed') t.counting = true;
    } else if (t.counting && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) {
      t.h = (t.h + 1) % 2 ** 32;
      const body = el.name === 'message' ? el.getChildText('body') : undefined;
      if (body !== undefined && el.attrs.type !== 'error') t.bodies.push(body);
    }
    orig(el);
  };
  return t;
}

/** Sends `<enable/>` and waits for `<enabled/>`. */
export async function enableSm(
  c: TestClient,
  resume = true,
): Promise<{ tracker: SmTracker; enabled: Element }> {
  const tracker = trackSm(c);
  const p = c.receive((e) => e.xmlns === NS.sm && (e.name === 'enabled' || e.name === 'failed'));
  c.send(xml('enable', { xmlns: NS.sm, resume: resume ? 'true' : undefined }));
  const enabled = await p;
  if (enabled.name !== 'enabled') throw new Error(`enable failed: ${enabled.toString()}`);
  return { tracker, enabled };
}

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
