import type { Element } from '@natter/xml';
import { buildForm, parseBoolean, parseForm, formType, type FormField } from '@natter/protocol';
import { pubsubError } from './pubsub-errors.js';

/** XEP-0060 §16.4.4 FORM_TYPEs. */
export const FORM = {
  nodeConfig: 'http://jabber.org/protocol/pubsub#node_config',
  publishOptions: 'http://jabber.org/protocol/pubsub#publish-options',
  subscribeOptions: 'http://jabber.org/protocol/pubsub#subscribe_options',
  metaData: 'http://jabber.org/protocol/pubsub#meta-data',
  subscribeAuthorization: 'http://jabber.org/protocol/pubsub#subscribe_authorization',
} as const;

export const ACCESS_MODELS = ['open', 'presence', 'roster', 'authorize', 'whitelist'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const PUBLISH_MODELS = ['publishers', 'subscribers', 'open'] as const;
export type PublishModel = (typeof PUBLISH_MODELS)[number];
export const SEND_LAST = ['never', 'on_sub', 'on_sub_and_presence'] as const;
export type SendLast = (typeof SEND_LAST)[number];
export const NOTIFICATION_TYPES = ['headline', 'normal'] as const;

/** A node's configuration (XEP-0060 §16.4.4 pubsub#node_config), stored as JSON. */
export interface NodeConfig {
  title: string;
  description: string;
  /** Payload type (namespace of the items). */
  type: string;
  access_model: AccessModel;
  roster_groups_allowed: string[];
  publish_model: PublishModel;
  max_items: number;
  persist_items: boolean;
  deliver_payloads: boolean;
  deliver_notifications: boolean;
  notify_retract: boolean;
  notify_delete: boolean;
  notify_config: boolean;
  send_last_published_item: SendLast;
  notification_type: (typeof NOTIFICATION_TYPES)[number];
}

export type ConfigKey = keyof NodeConfig;

type Kind = 'bool' | 'text' | 'int' | 'list' | 'multi';
const FIELDS: Record<ConfigKey, { kind: Kind; label: string; options?: readonly string[] }> = {
  title: { kind: 'text', label: 'A friendly name for the node' },
  description: { kind: 'text', label: 'A description of the node' },
  type: { kind: 'text', label: 'The type of node data, usually the namespace of the payload' },
  access_model: { kind: 'list', label: 'Who may subscribe and retrieve items', options: ACCESS_MODELS },
  roster_groups_allowed: { kind: 'multi', label: 'Roster groups allowed to subscribe' },
  publish_model: { kind: 'list', label: 'Who may publish', options: PUBLISH_MODELS },
  max_items: { kind: 'int', label: 'Maximum number of items to persist' },
  persist_items: { kind: 'bool', label: 'Persist items to storage' },
  deliver_payloads: { kind: 'bool', label: 'Deliver payloads with event notifications' },
  deliver_notifications: { kind: 'bool', label: 'Deliver event notifications' },
  notify_retract: { kind: 'bool', label: 'Notify subscribers when items are removed from the node' },
  notify_delete: { kind: 'bool', label: 'Notify subscribers when the node is deleted' },
  notify_config: { kind: 'bool', label: 'Notify subscribers when the node configuration changes' },
  send_last_published_item: {
    kind: 'list',
    label: 'When to send the last published item',
    options: SEND_LAST,
  },
  notification_type: { kind: 'list', label: 'Message type of notifications', options: NOTIFICATION_TYPES },
};

export function defaultConfig(overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    title: '',
    description: '',
    type: '',
    access_model: 'open',
    roster_groups_allowed: [],
    publish_model: 'publishers',
    max_items: 10,
    persist_items: true,
    deliver_payloads: true,
    deliver_notifications: true,
    notify_retract: true,
    notify_delete: true,
    notify_config: false,
    send_last_published_item: 'on_sub',
    notification_type: 'headline',
    ...overrides,
  };
}

/** Reads a stored configuration, filling fields added since with defaults. */
export function loadConfig(json: string): NodeConfig {
  return defaultConfig(JSON.parse(json) as Partial<NodeConfig>);
}

/** The configuration form (XEP-0060 §8.2.1): the current values with their options. */
export function configForm(
  config: NodeConfig,
  maxItemsLimit: number,
  type: 'form' | 'result' = 'form',
): Element {
  const fields: FormField[] = (Object.keys(FIELDS) as ConfigKey[]).map((key) => {
    const f = FIELDS[key];
    const v = config[key];
    return {
      var: `pubsub#${key}`,
      label: f.label,
      type:
        f.kind === 'bool'
          ? 'boolean'
          : f.kind === 'list'
            ? 'list-single'
            : f.kind === 'multi'
              ? 'text-multi'
              : 'text-single',
      values: Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)],
      options: f.options?.map((o) => ({ value: o })),
      desc: key === 'max_items' ? `at most ${maxItemsLimit}` : undefined,
    };
  });
  return buildForm({ type, formType: FORM.nodeConfig, fields });
}

/** A configuration as a submitted form (values only), as XEP-0227 exports carry it. */
export function configSubmitForm(config: NodeConfig): Element {
  return buildForm({
    type: 'submit',
    formType: FORM.nodeConfig,
    fields: (Object.keys(FIELDS) as ConfigKey[]).map((key) => {
      const v = config[key];
      return {
        var: `pubsub#${key}`,
        values: Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)],
      };
    }),
  });
}

/** Parses one field's values into its typed value; throws not-acceptable on a bad value. */
function parseField(key: ConfigKey, values: string[], maxItemsLimit: number): NodeConfig[ConfigKey] {
  const f = FIELDS[key];
  const first = values[0] ?? '';
  const bad = (why: string) => pubsubError('not-acceptable', undefined, { text: `pubsub#${key}: ${why}` });
  switch (f.kind) {
    case 'bool': {
      const b = parseBoolean(first);
      if (b === undefined) throw bad('expected a boolean');
      return b;
    }
    case 'int': {
      if (first === 'max') return maxItemsLimit;
      if (!/^\d+$/.test(first)) throw bad('expected a non-negative integer or "max"');
      const n = Number(first);
      if (n > maxItemsLimit)
        throw pubsubError('not-acceptable', undefined, {
          text: `pubsub#max_items: at most ${maxItemsLimit} items per node`,
        });
      return n;
    }
    case 'list':
      if (!f.options!.includes(first)) throw bad(`expected one of ${f.options!.join(', ')}`);
      return first;
    case 'multi':
      return values.filter((v) => v !== '');
    default:
      return first;
  }
}

/** The `pubsub#…` fields of a submitted form, typed; unknown fields are listed apart. */
export function readConfigFields(
  x: Element,
  maxItemsLimit: number,
): { values: Partial<NodeConfig>; unknown: string[] } {
  const form = parseForm(x);
  const values: Partial<NodeConfig> = {};
  const unknown: string[] = [];
  for (const field of form.fields) {
    const name = field.var;
    if (name === undefined || name === 'FORM_TYPE') continue;
    const key = name.startsWith('pubsub#') ? (name.slice(7) as ConfigKey) : undefined;
    if (key === undefined || !(key in FIELDS)) {
      unknown.push(name);
      continue;
    }
    (values as Record<string, unknown>)[key] = parseField(key, field.values, maxItemsLimit);
  }
  return { values, unknown };
}

/**
 * A node configuration form read from another server's export (XEP-0227): the `pubsub#…` fields
 * this server knows, each checked on its own; a value it cannot take is left out and named in
 * `rejected` instead of refusing the whole form.
 */
export function readForeignConfig(
  x: Element,
  maxItemsLimit: number,
): { values: Partial<NodeConfig>; rejected: string[] } {
  const values: Partial<NodeConfig> = {};
  const rejected: string[] = [];
  for (const field of parseForm(x).fields) {
    const name = field.var;
    if (name === undefined || name === 'FORM_TYPE' || !name.startsWith('pubsub#')) continue;
    const key = name.slice(7) as ConfigKey;
    if (!(key in FIELDS)) continue;
    try {
      (values as Record<string, unknown>)[key] = parseField(key, field.values, maxItemsLimit);
    } catch {
      rejected.push(`${name}=${field.values.join(',')}`);
    }
  }
  return { values, rejected };
}

/** Applies a submitted node_config form (XEP-0060 §8.2.4); unknown fields are ignored. */
export function applyConfigForm(config: NodeConfig, x: Element, maxItemsLimit: number): NodeConfig {
  const form = parseForm(x);
  const ft = formType(form);
  if (ft !== undefined && ft !== FORM.nodeConfig)
    throw pubsubError('bad-request', undefined, { text: `unexpected FORM_TYPE ${ft}` });
  return { ...config, ...readConfigFields(x, maxItemsLimit).values };
}

/** Two configuration values equal (lists compared as sets). */
export function sameValue(a: NodeConfig[ConfigKey], b: NodeConfig[ConfigKey]): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v) => b.includes(v));
  return a === b;
}
