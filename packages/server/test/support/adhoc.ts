// Helpers shared by the XEP-0050 tests (not a test file itself).
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS, buildForm } from '@natter/protocol';
import { NS_COMMANDS } from '../../src/modules/adhoc/api.js';

/** An ad-hoc `<command/>` IQ to the server. */
export const command = (attrs: Record<string, string | undefined>, ...children: Element[]) =>
  xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: NS_COMMANDS, ...attrs }, children));

/** A submitted form with one value per field. */
export const submit = (fields: Record<string, string>) =>
  buildForm({ type: 'submit', fields: Object.entries(fields).map(([k, v]) => ({ var: k, values: [v] })) });

/** The `<command/>` of a result (asserted to be one). */
export function done(res: Element): Element {
  assert.equal(res.attrs.type, 'result', res.toString());
  return res.getChild('command', NS_COMMANDS)!;
}

/** Asserts an error with `condition` (and the XEP-0050 `app` condition); returns its text. */
export function refused(res: Element, condition: string, app?: string): string {
  assert.equal(res.attrs.type, 'error', res.toString());
  const err = res.getChild('error')!;
  assert.ok(err.getChild(condition, NS.stanzas), `expected ${condition}: ${err.toString()}`);
  if (app) assert.ok(err.getChild(app, NS_COMMANDS), `expected <${app}/>: ${err.toString()}`);
  return err.getChildText('text', NS.stanzas) ?? '';
}
