import { escapeLocal, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseForm, type FieldType } from '@natter/protocol';
import { xml, type Element } from '@natter/xml';
import type { Component } from '../component.js';

const NS_GATEWAY = 'jabber:iq:gateway';
/** XEP-0077 §3.1 field names that have their own element in jabber:iq:register. */
const LEGACY_FIELDS = new Set([
  'username',
  'nick',
  'password',
  'name',
  'first',
  'last',
  'email',
  'address',
  'city',
  'state',
  'zip',
  'phone',
  'url',
  'date',
  'misc',
  'text',
  'key',
]);

export interface RegistrationField {
  var: string;
  label?: string;
  /** Default `text-single` (`text-private` for `password`). */
  type?: FieldType;
  required?: boolean;
}

export interface RegistrationOptions {
  /** Fields the user fills in, e.g. the legacy network's user name and password. */
  fields: RegistrationField[];
  instructions?: string;
  /** Called with the submitted values; throw a StanzaError (e.g. not-acceptable) to refuse. */
  onRegister(from: Jid, form: Record<string, string>): void | Promise<void>;
  /** Called when the user cancels the registration (`<remove/>`). */
  onUnregister?(from: Jid): void | Promise<void>;
  /** Current values for a registered user (shown with `<registered/>`), undefined when not registered. */
  registered?(from: Jid): Record<string, string> | undefined | Promise<Record<string, string> | undefined>;
  /**
   * After a registration, ask the user to add the gateway to their roster (presence subscribe
   * from the domain, XEP-0100 §4.1.1); after a removal, unsubscribe both ways (§4.3). Default true.
   */
  subscribe?: boolean;
  /**
   * XEP-0100 §6 jabber:iq:gateway: turns a legacy address typed by the user into a JID on the
   * gateway. `true` uses XEP-0106 escaping of the prompt as the local part.
   */
  gateway?: true | { desc?: string; prompt?: string; toJid?(prompt: string): Jid | string };
}

/** Installs XEP-0077 (and optionally XEP-0100 §6) handlers on the domain; returns an uninstaller. */
export function registration(gw: Component, opts: RegistrationOptions): () => void {
  const onDomain = (to: Jid) => {
    if (to.toString() !== gw.domain) throw new StanzaError('service-unavailable');
  };
  const offs: (() => void)[] = [];
  offs.push(
    gw.handleIq('get', NS.register, 'query', async ({ from, to }) => {
      onDomain(to);
      const current = await opts.registered?.(from);
      return xml(
        'query',
        { xmlns: NS.register },
        current && xml('registered'),
        opts.instructions !== undefined && xml('instructions', null, opts.instructions),
        opts.fields
          .filter((f) => LEGACY_FIELDS.has(f.var))
          .map((f) => xml(f.var, null, current?.[f.var] ?? '')),
        buildForm({
          type: 'form',
          title: `Registration with ${gw.domain}`,
          instructions: opts.instructions,
          formType: NS.register,
          fields: opts.fields.map((f) => ({
            var: f.var,
            type: f.type ?? (f.var === 'password' ? 'text-private' : 'text-single'),
            label: f.label,
            required: f.required,
            values: current?.[f.var] !== undefined && f.var !== 'password' ? [current[f.var]!] : [],
          })),
        }),
      );
    }),
  );
  offs.push(
    gw.handleIq('set', NS.register, 'query', async ({ from, to, payload }) => {
      onDomain(to);
      if (payload.getChild('remove', NS.register)) {
        await opts.onUnregister?.(from);
        if (opts.subscribe !== false) {
          // XEP-0100 §4.3: the gateway leaves the user's roster
          gw.sendPresence({ to: from.bare, type: 'unsubscribe' });
          gw.sendPresence({ to: from.bare, type: 'unsubscribed' });
          gw.sendPresence({ to: from.bare, type: 'unavailable' });
        }
        return undefined;
      }
      const values = submitted(payload);
      for (const f of opts.fields) {
        if (f.required && !values[f.var])
          throw new StanzaError('not-acceptable', { text: `the field ${f.label ?? f.var} is required` });
      }
      const known = new Set(opts.fields.map((f) => f.var));
      const form: Record<string, string> = {};
      for (const [k, v] of Object.entries(values)) if (known.has(k)) form[k] = v;
      await opts.onRegister(from, form);
      if (opts.subscribe !== false) {
        // XEP-0100 §4.1.1 step 8: the gateway asks to be in the user's roster
        gw.sendPresence({ to: from.bare, type: 'subscribe' });
      }
      return undefined;
    }),
  );
  const gwOpts = opts.gateway === true ? {} : opts.gateway;
  if (gwOpts) {
    const toJid = gwOpts.toJid ?? ((prompt: string) => gw.jid(escapeLocal(prompt)));
    offs.push(
      gw.handleIq('get', NS_GATEWAY, 'query', () =>
        xml(
          'query',
          { xmlns: NS_GATEWAY },
          xml('desc', null, gwOpts.desc ?? 'Enter the contact’s address on the legacy network'),
          xml('prompt', null, gwOpts.prompt ?? 'Contact'),
        ),
      ),
    );
    offs.push(
      gw.handleIq('set', NS_GATEWAY, 'query', ({ payload }) => {
        const prompt = payload.getChildText('prompt');
        if (!prompt) throw new StanzaError('bad-request', { text: 'a <prompt/> is required' });
        let result: string;
        try {
          result = toJid(prompt).toString();
        } catch {
          throw new StanzaError('not-acceptable', { text: 'not a valid legacy address' });
        }
        // XEP-0100 §6.2: <jid/> (and <prompt/> for older clients)
        return xml('query', { xmlns: NS_GATEWAY }, xml('jid', null, result), xml('prompt', null, result));
      }),
    );
  }
  // XEP-0100 §4.1.1: the user's server asks for the gateway's presence; the gateway agrees and
  // answers probes with its presence, so the user sees the gateway online in the roster.
  let active = true;
  gw.interceptors.presence.push((p) => {
    if (!active || p.to.toString() !== gw.domain) return false;
    if (p.type === 'subscribe') {
      gw.sendPresence({ to: p.from.bare, type: 'subscribed' });
      gw.sendPresence({ to: p.from.bare });
    } else if (p.type === 'probe') gw.sendPresence({ to: p.from });
    else return false;
    return true;
  });
  return () => {
    active = false;
    for (const off of offs) off();
  };
}

/** Values of a jabber:iq:register set: the data form if present, else the legacy elements. */
function submitted(query: Element): Record<string, string> {
  const out: Record<string, string> = {};
  const x = query.getChild('x', NS.dataForms);
  if (x) {
    const form = parseForm(x);
    if (form.type === 'cancel') throw new StanzaError('bad-request', { text: 'registration cancelled' });
    for (const f of form.fields) if (f.var && f.var !== 'FORM_TYPE') out[f.var] = f.values[0] ?? '';
    return out;
  }
  for (const el of query.elements()) if (LEGACY_FIELDS.has(el.name)) out[el.name] = el.text();
  return out;
}
