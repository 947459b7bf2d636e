// The gateway's configuration: a JSON file, environment variables, or both (the environment wins).
// Every option is checked here, so a bad value is named before anything connects.
import { readFile } from 'node:fs/promises';
import type { BinaryPolicy } from './payload.js';
import type { RateLimit } from './rate-limiter.js';

export interface GatewayConfig {
  component: {
    /** Where the XMPP server's component listener is, e.g. `xmpp://127.0.0.1:5347`. */
    service: string;
    /** The gateway's domain (topics are addresses on it), e.g. `mqtt.localhost`. */
    domain: string;
    /** The secret shared with the XMPP server. */
    secret: string;
  };
  mqtt: {
    /** The broker, e.g. `mqtt://127.0.0.1:1883` (mqtts:// and ws(s):// work too). */
    url: string;
    username?: string | undefined;
    password?: string | undefined;
    clientId?: string | undefined;
  };
  /** JSON file where subscriptions are kept across restarts. */
  dataFile: string;
  /**
   * Who may use the gateway: bare JIDs (`alice@example.com`) and domains (`example.com`);
   * `*` for everyone. Default: the parent domain of the gateway's domain (`mqtt.example.com` →
   * `example.com`), or everyone when the domain has no parent.
   */
  allowedUsers: string[];
  /**
   * Topic prefixes users may subscribe and publish to, matched as strings (end one with `/` to
   * mean a subtree). Default `[""]`: every topic, except those starting with `$` which a prefix
   * must name explicitly.
   */
  topicPrefixes: string[];
  /** Whether subscriptions may use `+` and `#`. */
  allowWildcards: boolean;
  /** What to do with payloads that are not UTF-8 text: send them in base64 with a note, or skip them. */
  binaryPayloads: BinaryPolicy;
  limits: {
    /** Topics one user may follow (contacts and rooms together). */
    maxSubscriptionsPerUser: number;
    /** Distinct topic filters the gateway subscribes to at the broker. */
    maxTopics: number;
    /** Users with at least one subscription. */
    maxUsers: number;
    /** Occupants of one topic room. */
    maxOccupantsPerRoom: number;
    /** Largest payload forwarded either way, in bytes. */
    maxPayloadBytes: number;
    /** Publishes per user. */
    publishRate: RateLimit;
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const DEFAULT_LIMITS: GatewayConfig['limits'] = {
  maxSubscriptionsPerUser: 50,
  maxTopics: 10_000,
  maxUsers: 10_000,
  maxOccupantsPerRoom: 200,
  maxPayloadBytes: 8192,
  publishRate: { burst: 10, perSecond: 1 },
};

type Input = Record<string, unknown>;

function obj(v: unknown, name: string): Input {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError(`${name} must be an object`);
  return v as Input;
}

function str(v: unknown, name: string, required: true): string;
function str(v: unknown, name: string, required?: false): string | undefined;
function str(v: unknown, name: string, required = false): string | undefined {
  if (v === undefined || v === '') {
    if (required) throw new ConfigError(`${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new ConfigError(`${name} must be a string`);
  return v;
}

function num(v: unknown, name: string, dflt: number, min: number): number {
  if (v === undefined || v === '') return dflt;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min)
    throw new ConfigError(`${name} must be a number of at least ${min}`);
  return n;
}

function list(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'string') return v.split(',').map((s) => s.trim());
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
    throw new ConfigError(`${name} must be a list of strings`);
  return v as string[];
}

function bool(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  if (v === true || v === 'true' || v === '1') return true;
  if (v === false || v === 'false' || v === '0') return false;
  throw new ConfigError(`${name} must be true or false`);
}

function defaultAllowed(domain: string): string[] {
  const dot = domain.indexOf('.');
  return dot > 0 && dot < domain.length - 1 ? [domain.slice(dot + 1)] : ['*'];
}

/** Validates a configuration object (as read from JSON), filling in defaults. */
export function parseConfig(input: unknown): GatewayConfig {
  const root = obj(input, 'the configuration');
  const component = obj(root.component, 'component');
  const mqtt = obj(root.mqtt, 'mqtt');
  const limits = obj(root.limits, 'limits');
  const rate = obj(limits.publishRate, 'limits.publishRate');
  const domain = str(component.domain, 'component.domain', true).toLowerCase();
  const binary = str(root.binaryPayloads, 'binaryPayloads') ?? 'base64';
  if (binary !== 'base64' && binary !== 'skip')
    throw new ConfigError('binaryPayloads must be "base64" or "skip"');
  const service = str(component.service, 'component.service') ?? 'xmpp://127.0.0.1:5347';
  const url = str(mqtt.url, 'mqtt.url') ?? 'mqtt://127.0.0.1:1883';
  return {
    component: { service, domain, secret: str(component.secret, 'component.secret', true) },
    mqtt: {
      url,
      username: str(mqtt.username, 'mqtt.username'),
      password: str(mqtt.password, 'mqtt.password'),
      clientId: str(mqtt.clientId, 'mqtt.clientId'),
    },
    dataFile: str(root.dataFile, 'dataFile') ?? './mqtt-gateway.json',
    allowedUsers: (list(root.allowedUsers, 'allowedUsers') ?? defaultAllowed(domain)).map((s) =>
      s.toLowerCase(),
    ),
    topicPrefixes: list(root.topicPrefixes, 'topicPrefixes') ?? [''],
    allowWildcards: bool(root.allowWildcards, 'allowWildcards', true),
    binaryPayloads: binary,
    limits: {
      maxSubscriptionsPerUser: num(
        limits.maxSubscriptionsPerUser,
        'limits.maxSubscriptionsPerUser',
        DEFAULT_LIMITS.maxSubscriptionsPerUser,
        1,
      ),
      maxTopics: num(limits.maxTopics, 'limits.maxTopics', DEFAULT_LIMITS.maxTopics, 1),
      maxUsers: num(limits.maxUsers, 'limits.maxUsers', DEFAULT_LIMITS.maxUsers, 1),
      maxOccupantsPerRoom: num(
        limits.maxOccupantsPerRoom,
        'limits.maxOccupantsPerRoom',
        DEFAULT_LIMITS.maxOccupantsPerRoom,
        1,
      ),
      maxPayloadBytes: num(
        limits.maxPayloadBytes,
        'limits.maxPayloadBytes',
        DEFAULT_LIMITS.maxPayloadBytes,
        1,
      ),
      publishRate: {
        burst: num(rate.burst, 'limits.publishRate.burst', DEFAULT_LIMITS.publishRate.burst, 1),
        perSecond: num(
          rate.perSecond,
          'limits.publishRate.perSecond',
          DEFAULT_LIMITS.publishRate.perSecond,
          0,
        ),
      },
    },
  };
}

/** Environment variables, each overriding one option of the file. */
export const ENV_VARS = {
  NATTER_MQTT_SERVICE: 'component.service',
  NATTER_MQTT_DOMAIN: 'component.domain',
  NATTER_MQTT_SECRET: 'component.secret',
  NATTER_MQTT_URL: 'mqtt.url',
  NATTER_MQTT_USERNAME: 'mqtt.username',
  NATTER_MQTT_PASSWORD: 'mqtt.password',
  NATTER_MQTT_DATA_FILE: 'dataFile',
  NATTER_MQTT_ALLOWED_USERS: 'allowedUsers',
  NATTER_MQTT_TOPIC_PREFIXES: 'topicPrefixes',
} as const;

/** Reads the configuration from a JSON file (optional) and the environment. */
export async function loadConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<GatewayConfig> {
  let input: Input = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      input = obj(JSON.parse(text), file);
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  for (const [name, path] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const [head, tail] = path.split('.') as [string, string | undefined];
    if (tail === undefined) input[head] = value;
    else input[head] = { ...obj(input[head], head), [tail]: value };
  }
  return parseConfig(input);
}
