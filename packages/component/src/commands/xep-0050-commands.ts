import type { Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseForm, type DataForm } from '@natter/protocol';
import { xml, type Element } from '@natter/xml';
import type { Component } from '../component.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';

export type CommandAction = 'execute' | 'next' | 'complete' | 'prev' | 'cancel';

/** What a command handler receives on each step. */
export interface CommandContext {
  from: Jid;
  node: string;
  sessionId: string;
  action: CommandAction;
  /** How many forms this session already sent the user: 0 on the first call. */
  stage: number;
  /** The form the user submitted, if any. */
  form?: DataForm;
  /** The submitted fields as var → first value. */
  values: Record<string, string>;
  /** Data the handler keeps between the steps of one session. */
  state: Record<string, unknown>;
}

/**
 * A step's answer: `{ form }` asks the user to fill in a form (status executing); anything else
 * completes the command, with an optional note and result form.
 */
export type CommandResult =
  | { form: DataForm & { formType?: string }; note?: string }
  | {
      done: true;
      note?: string;
      noteType?: 'info' | 'warn' | 'error';
      result?: DataForm & { formType?: string };
    };

export type CommandHandler = (ctx: CommandContext) => CommandResult | Promise<CommandResult>;

export interface CommandOptions {
  /** Who may list and run the command; default everyone. */
  allow?(from: Jid): boolean;
}

interface Session {
  node: string;
  from: string;
  stage: number;
  state: Record<string, unknown>;
  expires: number;
}

const MAX_SESSIONS = 1000;
const SESSION_MS = 10 * 60_000;

/** XEP-0050 ad-hoc commands on the component's domain. */
export class Commands {
  readonly #commands = new Map<string, { name: string; handler: CommandHandler; options: CommandOptions }>();
  readonly #sessions = new Map<string, Session>();
  #counter = 0;

  constructor(private readonly gw: Component) {
    gw.handleIq('set', NS_COMMANDS, 'command', (req) => this.#execute(req.from, req.to, req.payload));
    gw.disco.providers.push({
      features: () => [NS_COMMANDS],
      items: (node, req) =>
        node === NS_COMMANDS && req.to.toString() === gw.domain
          ? [...this.#commands]
              .filter(([, c]) => c.options.allow?.(req.from) ?? true)
              .map(([n, c]) => ({ jid: gw.domain, node: n, name: c.name }))
          : undefined,
      info: (req, node) =>
        req.to.toString() === gw.domain && this.#commands.has(node)
          ? {
              identities: [
                { category: 'automation', type: 'command-node', name: this.#commands.get(node)!.name },
              ],
              features: [NS_COMMANDS, NS.dataForms],
            }
          : node === NS_COMMANDS && req.to.toString() === gw.domain
            ? { identities: [{ category: 'automation', type: 'command-list' }], features: [] }
            : undefined,
    });
  }

  add(node: string, name: string, handler: CommandHandler, options: CommandOptions): () => void {
    this.#commands.set(node, { name, handler, options });
    return () => {
      if (this.#commands.get(node)?.handler === handler) this.#commands.delete(node);
    };
  }

  async #execute(from: Jid, to: Jid, cmd: Element): Promise<Element> {
    if (to.toString() !== this.gw.domain) throw new StanzaError('service-unavailable');
    const node = cmd.attr('node') ?? '';
    const command = this.#commands.get(node);
    if (!command) throw new StanzaError('item-not-found', { text: 'no such command' });
    if (command.options.allow && !command.options.allow(from)) throw new StanzaError('forbidden');
    const action = (cmd.attr('action') ?? 'execute') as CommandAction;
    if (!['execute', 'next', 'complete', 'prev', 'cancel'].includes(action))
      throw new StanzaError('bad-request', { appCondition: xml('malformed-action', { xmlns: NS_COMMANDS }) });
    const now = Date.now();
    for (const [id, s] of this.#sessions) if (s.expires < now) this.#sessions.delete(id);
    let sessionId = cmd.attr('sessionid');
    let session: Session | undefined;
    if (sessionId) {
      session = this.#sessions.get(sessionId);
      // XEP-0050 §4.4: an unknown or foreign session
      if (!session || session.from !== from.toString() || session.node !== node)
        throw new StanzaError('not-allowed', { appCondition: xml('bad-sessionid', { xmlns: NS_COMMANDS }) });
    } else {
      if (this.#sessions.size >= MAX_SESSIONS)
        throw new StanzaError('resource-constraint', { text: 'too many command sessions' });
      sessionId = `s${(++this.#counter).toString(36)}-${now.toString(36)}`;
      session = { node, from: from.toString(), stage: 0, state: {}, expires: now + SESSION_MS };
      this.#sessions.set(sessionId, session);
    }
    if (action === 'cancel') {
      this.#sessions.delete(sessionId);
      return xml('command', { xmlns: NS_COMMANDS, node, sessionid: sessionId, status: 'canceled' });
    }
    if (action === 'prev')
      throw new StanzaError('bad-request', { appCondition: xml('bad-action', { xmlns: NS_COMMANDS }) });
    const x = cmd.getChild('x', NS.dataForms);
    const form = x ? parseForm(x) : undefined;
    const values: Record<string, string> = {};
    for (const f of form?.fields ?? []) if (f.var && f.var !== 'FORM_TYPE') values[f.var] = f.values[0] ?? '';
    const ctx: CommandContext = {
      from,
      node,
      sessionId,
      action,
      stage: session.stage,
      form,
      values,
      state: session.state,
    };
    let result: CommandResult;
    try {
      result = await command.handler(ctx);
    } catch (err) {
      this.#sessions.delete(sessionId);
      throw err;
    }
    if ('form' in result) {
      session.stage++;
      session.expires = Date.now() + SESSION_MS;
      return xml(
        'command',
        { xmlns: NS_COMMANDS, node, sessionid: sessionId, status: 'executing' },
        xml('actions', { execute: 'complete' }, xml('complete')),
        result.note !== undefined && xml('note', { type: 'info' }, result.note),
        buildForm(result.form),
      );
    }
    this.#sessions.delete(sessionId);
    return xml(
      'command',
      { xmlns: NS_COMMANDS, node, sessionid: sessionId, status: 'completed' },
      result.note !== undefined && xml('note', { type: result.noteType ?? 'info' }, result.note),
      result.result && buildForm(result.result),
    );
  }
}
