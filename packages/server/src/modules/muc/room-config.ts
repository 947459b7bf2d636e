import type { Element } from '@natter/xml';
import { buildForm, formType, parseBoolean, parseForm, StanzaError, type FormField } from '@natter/protocol';

/** XEP-0045 §15.5.3 `muc#roomconfig`: a room's configuration. */
export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  /** Listed in the service's disco#items (muc_public) or hidden. */
  public: boolean;
  membersOnly: boolean;
  /** Empty: no password (muc_unsecured). */
  password: string;
  moderated: boolean;
  /** 0: no limit beyond the service's. */
  maxUsers: number;
  /** Who may see occupants' real JIDs: moderators (semi-anonymous) or anyone (non-anonymous). */
  whois: 'moderators' | 'anyone';
  historyLength: number;
  /** Participants may change the subject (moderators always may). */
  changeSubject: boolean;
  /** Participants may invite (moderators and admins always may). */
  allowInvites: boolean;
  /** Who may send private messages. */
  allowPm: 'anyone' | 'participants' | 'moderators' | 'none';
  /** Public logging (status code 170); accepted, nothing is published. */
  enableLogging: boolean;
  /** Messages kept in the room's archive (XEP-0313, `muc#roomconfig_enablearchiving`). */
  archive: boolean;
  lang: string;
}

export const FORM_TYPE_CONFIG = 'http://jabber.org/protocol/muc#roomconfig';

export const LIMITS = { name: 256, description: 1024, password: 256, lang: 32 } as const;

export function defaultConfig(maxUsers: number, historyLength: number, archive = false): RoomConfig {
  return {
    name: '',
    description: '',
    persistent: false,
    public: true,
    membersOnly: false,
    password: '',
    moderated: false,
    maxUsers,
    whois: 'moderators',
    historyLength,
    changeSubject: false,
    allowInvites: false,
    allowPm: 'anyone',
    enableLogging: false,
    archive,
    lang: '',
  };
}

const bool = (v: boolean) => (v ? '1' : '0');
const MAXUSERS_OPTIONS = ['5', '10', '20', '30', '50', '100', '200', '500', '1000'];

/** §10.2: the configuration form sent to an owner, with the current values. */
export function configForm(
  c: RoomConfig,
  roomJid: string,
  admins: string[],
  owners: string[],
  serviceMax: number,
  /** The service archives rooms (the archiving field is offered). */
  archiving = false,
): Element {
  const f = (
    v: string,
    type: FormField['type'],
    label: string,
    values: string[],
    options?: string[],
  ): FormField => ({
    var: v,
    type,
    label,
    values,
    options: options?.map((o) => ({ value: o })),
  });
  return buildForm({
    type: 'form',
    title: `Configuration of ${roomJid}`,
    instructions:
      'Complete this form to change the room configuration (or submit it empty to accept the defaults).',
    formType: FORM_TYPE_CONFIG,
    fields: [
      f('muc#roomconfig_roomname', 'text-single', 'Name', [c.name]),
      f('muc#roomconfig_roomdesc', 'text-single', 'Description', [c.description]),
      f('muc#roomconfig_lang', 'text-single', 'Language', [c.lang]),
      f('muc#roomconfig_persistentroom', 'boolean', 'Make room persistent', [bool(c.persistent)]),
      f('muc#roomconfig_publicroom', 'boolean', 'List the room publicly', [bool(c.public)]),
      f('muc#roomconfig_membersonly', 'boolean', 'Members only', [bool(c.membersOnly)]),
      f('muc#roomconfig_moderatedroom', 'boolean', 'Moderated (only participants with voice may speak)', [
        bool(c.moderated),
      ]),
      f('muc#roomconfig_passwordprotectedroom', 'boolean', 'Password required to enter', [
        bool(c.password !== ''),
      ]),
      f('muc#roomconfig_roomsecret', 'text-private', 'Password', [c.password]),
      f(
        'muc#roomconfig_maxusers',
        'list-single',
        'Maximum number of occupants',
        [c.maxUsers === 0 ? 'none' : String(c.maxUsers)],
        [
          ...MAXUSERS_OPTIONS.filter((o) => serviceMax === 0 || Number(o) <= serviceMax),
          ...(serviceMax === 0 ? ['none'] : [String(serviceMax)]),
        ].filter((v, i, a) => a.indexOf(v) === i),
      ),
      f(
        'muc#roomconfig_whois',
        'list-single',
        'Who may discover real JIDs',
        [c.whois],
        ['moderators', 'anyone'],
      ),
      f('muc#maxhistoryfetch', 'text-single', 'Maximum number of history messages', [
        String(c.historyLength),
      ]),
      f('muc#roomconfig_changesubject', 'boolean', 'Participants may change the subject', [
        bool(c.changeSubject),
      ]),
      f('muc#roomconfig_allowinvites', 'boolean', 'Participants may invite others', [bool(c.allowInvites)]),
      f(
        'muc#roomconfig_allowpm',
        'list-single',
        'Who may send private messages',
        [c.allowPm],
        ['anyone', 'participants', 'moderators', 'none'],
      ),
      f('muc#roomconfig_enablelogging', 'boolean', 'Enable public logging', [bool(c.enableLogging)]),
      ...(archiving
        ? [
            f(
              'muc#roomconfig_enablearchiving',
              'boolean',
              'Archive messages (history for members, XEP-0313)',
              [bool(c.archive)],
            ),
          ]
        : []),
      f('muc#roomconfig_roomadmins', 'jid-multi', 'Room admins', admins),
      f('muc#roomconfig_roomowners', 'jid-multi', 'Room owners', owners),
    ],
  });
}

export interface ConfigSubmission {
  config: RoomConfig;
  /** Present when the form listed them: bare JIDs to hold exactly these affiliations. */
  admins?: string[];
  owners?: string[];
}

function refuse(text: string): never {
  throw new StanzaError('not-acceptable', { text });
}

function boolField(v: string | undefined, name: string): boolean {
  const b = parseBoolean(v?.trim());
  if (b === undefined) refuse(`${name} must be a boolean`);
  return b;
}

function textField(v: string | undefined, name: string, max: number): string {
  const s = v ?? '';
  if (s.length > max) refuse(`${name} is longer than ${max} characters`);
  return s;
}

function intField(v: string | undefined, name: string, min: number, max: number): number {
  const s = (v ?? '').trim();
  if (!/^\d{1,9}$/.test(s)) refuse(`${name} must be a whole number`);
  const n = Number(s);
  if (n < min || n > max) refuse(`${name} must be between ${min} and ${max}`);
  return n;
}

/**
 * Applies a submitted `muc#roomconfig` form to a copy of `current` (fields not in the form keep
 * their value; unknown fields are ignored). Bad values: `not-acceptable`.
 */
export function applyConfigForm(
  x: Element,
  current: RoomConfig,
  limits: { maxUsers: number; historyMax: number; archiving?: boolean },
): ConfigSubmission {
  const form = parseForm(x);
  const ft = formType(form);
  if (ft !== undefined && ft !== FORM_TYPE_CONFIG) refuse(`FORM_TYPE must be ${FORM_TYPE_CONFIG}`);
  const c: RoomConfig = { ...current };
  const out: ConfigSubmission = { config: c };
  let passwordProtected: boolean | undefined;
  for (const field of form.fields) {
    const v = field.values[0];
    const name = field.var ?? '';
    switch (name) {
      case 'muc#roomconfig_roomname':
        c.name = textField(v, name, LIMITS.name);
        break;
      case 'muc#roomconfig_roomdesc':
        c.description = textField(v, name, LIMITS.description);
        break;
      case 'muc#roomconfig_lang':
        c.lang = textField(v, name, LIMITS.lang);
        break;
      case 'muc#roomconfig_persistentroom':
        c.persistent = boolField(v, name);
        break;
      case 'muc#roomconfig_publicroom':
        c.public = boolField(v, name);
        break;
      case 'muc#roomconfig_membersonly':
        c.membersOnly = boolField(v, name);
        break;
      case 'muc#roomconfig_moderatedroom':
        c.moderated = boolField(v, name);
        break;
      case 'muc#roomconfig_passwordprotectedroom':
        passwordProtected = boolField(v, name);
        break;
      case 'muc#roomconfig_roomsecret':
        c.password = textField(v, name, LIMITS.password);
        break;
      case 'muc#roomconfig_maxusers': {
        const max = limits.maxUsers;
        if ((v ?? '').trim() === 'none' || (v ?? '').trim() === '0') {
          if (max !== 0) refuse(`${name} cannot exceed ${max}`);
          c.maxUsers = 0;
        } else c.maxUsers = intField(v, name, 1, max === 0 ? 1_000_000 : max);
        break;
      }
      case 'muc#roomconfig_whois':
        if (v !== 'moderators' && v !== 'anyone') refuse(`${name} must be moderators or anyone`);
        c.whois = v;
        break;
      case 'muc#maxhistoryfetch':
      case 'muc#roomconfig_historylength':
        c.historyLength = intField(v, name, 0, limits.historyMax);
        break;
      case 'muc#roomconfig_changesubject':
        c.changeSubject = boolField(v, name);
        break;
      case 'muc#roomconfig_allowinvites':
        c.allowInvites = boolField(v, name);
        break;
      case 'muc#roomconfig_allowpm':
        if (v !== 'anyone' && v !== 'participants' && v !== 'moderators' && v !== 'none')
          refuse(`${name} must be anyone, participants, moderators or none`);
        c.allowPm = v;
        break;
      case 'muc#roomconfig_enablelogging':
        c.enableLogging = boolField(v, name);
        break;
      case 'muc#roomconfig_enablearchiving': {
        const on = boolField(v, name);
        if (on && limits.archiving !== true) refuse('this service does not archive rooms');
        c.archive = on;
        break;
      }
      case 'muc#roomconfig_roomadmins':
        out.admins = field.values.filter((s) => s.trim() !== '');
        break;
      case 'muc#roomconfig_roomowners':
        out.owners = field.values.filter((s) => s.trim() !== '');
        break;
      default:
        break; // FORM_TYPE and fields we do not implement (presencebroadcast, getmemberlist, pubsub …)
    }
  }
  if (passwordProtected === false) c.password = '';
  else if (passwordProtected === true && c.password === '')
    refuse('a password-protected room needs muc#roomconfig_roomsecret');
  return out;
}
