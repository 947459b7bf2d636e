import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { StanzaError, type DataForm } from '@natter/protocol';

/** XEP-0050's namespace: its IQ payload, disco feature and the node listing the commands. */
export const NS_COMMANDS = 'http://jabber.org/protocol/commands';

/** XEP-0050 §4.6's application conditions, with the stanza condition each goes with. */
const CONDITIONS = {
  'malformed-action': 'bad-request',
  'bad-action': 'bad-request',
  'bad-locale': 'bad-request',
  'bad-payload': 'bad-request',
  'bad-sessionid': 'bad-request',
  'session-expired': 'not-allowed',
} as const;

/** A XEP-0050 §4.6 error: e.g. `commandError('bad-payload', 'the passwords do not match')`. */
export function commandError(condition: keyof typeof CONDITIONS, text?: string): StanzaError {
  return new StanzaError(CONDITIONS[condition], {
    text,
    appCondition: xml(condition, { xmlns: NS_COMMANDS }),
  });
}

/**
 * What the adhoc module offers its peers (`ctx.use<AdhocApi>('adhoc')`, with
 * `dependencies: ['adhoc']`): commands of the server's JID (XEP-0050). The module runs the
 * protocol (disco, sessions bound to the requester's full JID, idle expiry, actions, `prev`,
 * cancel, errors); a command only says who may run it and what each stage answers.
 */
export interface AdhocApi {
  /** Adds a command; a second one with the same node throws. Returns the function that removes it. */
  register(command: AdhocCommand): () => void;
}

/** The actions a response may allow next (`execute` is always allowed and means the default). */
export type CommandAction = 'prev' | 'next' | 'complete';

export interface AdhocCommand {
  /** The command's node, unique on the server's JID. */
  node: string;
  /** Human-readable name (disco#items). */
  name: string;
  /**
   * May `requester` (a full JID, any domain) see and run the command? Checked for the listing, a
   * command's disco#info and every stage: the access check of admin commands (XEP-0133) goes here.
   */
  allowed(requester: Jid): boolean | Promise<boolean>;
  /**
   * Runs one stage and answers it. Throw a StanzaError to refuse a stage (bad form values:
   * `commandError('bad-payload', …)`); the session stays, so the requester may submit again.
   */
  execute(request: CommandRequest): CommandResponse | Promise<CommandResponse>;
}

export interface CommandRequest {
  /** The requester's full JID (local or not: `allowed` said yes). */
  requester: Jid;
  /**
   * Credentials may travel on the requester's stream: it is encrypted, or `auth.allowPlaintext`
   * allows them on it. False when the request did not come from a client stream of this node.
   */
  secure: boolean;
  /** 0 for the first stage (action `execute`), then one more per stage answered with a form. */
  stage: number;
  /** What the requester asked: `execute` starts a command; later stages are `next` or `complete`. */
  action: 'execute' | 'next' | 'complete';
  /** The form submitted with this stage (`<x type='submit'/>`), parsed, and its element. */
  form: DataForm | undefined;
  formElement: Element | undefined;
  /** What the command keeps from one stage to the next of this session. */
  state: Record<string, unknown>;
}

export interface CommandNote {
  type?: 'info' | 'warn' | 'error';
  text: string;
}

export interface CommandResponse {
  /** executing: more stages follow; completed/canceled: the session ends. */
  status: 'executing' | 'completed' | 'canceled';
  /** A form to fill in (executing) or results (`type: 'result'`), as a DataForm or an element. */
  form?: DataForm | Element;
  notes?: CommandNote[];
  /**
   * While executing: the actions allowed next and the one `execute` stands for (XEP-0050 §3.4).
   * Without it, `complete` is the only one (a single-form command).
   */
  actions?: { allowed: CommandAction[]; execute?: CommandAction };
}
