import type { Config } from './config.js';
import type { ModuleDefinition } from './core/module.js';

/**
 * What a reload (SIGHUP) may change in a running server without dropping a session: settings the
 * code reads from `core.config` when it uses them, so that changing the value in place is enough.
 * Any other key waits for a restart (listeners, hosts, storage, cluster, components, s2s …).
 * `tls` is applied by re-reading the certificates (certificates.ts).
 */
const RELOADABLE: readonly string[] = [
  'log.level',
  'tls.cert',
  'tls.key',
  'tls.certificates',
  // Stream limits: read when a stream (re)starts its parser or is created, so new streams get them.
  'limits.maxStanzaBytes',
  'limits.maxDepth',
  'limits.maxAttributes',
  'limits.authTimeoutMs',
  // Read at each use.
  'limits.maxAuthFailures',
  'limits.maxResourcesPerAccount',
  'limits.maxSendBufferBytes',
  'limits.maxSocketsPerIp',
  'registration.enabled',
  'registration.perIpPerHour',
  'auth.allowPlaintext',
  // Checked at each XEP-0133 request (ModuleContext.isAdmin).
  'admins',
  'auth.offerScramSha256',
  'bosh.maxWaitSeconds',
  'bosh.maxHold',
  'bosh.inactivitySeconds',
  'bosh.pollingSeconds',
];

/** One setting that differs between the running configuration and the file. */
export interface ConfigChange {
  /** Dotted path: `limits.maxAuthFailures`, `modules.muc.maxRooms`. */
  path: string;
  from: unknown;
  to: unknown;
}

export interface ReloadPlan {
  /** Applied in place (core settings) or into a module's options. */
  apply: ConfigChange[];
  /** Module options to apply: module name → option → new value. */
  moduleOptions: Map<string, Record<string, unknown>>;
  /** What differs but waits for a restart. */
  restart: ConfigChange[];
}

type Leaves = Map<string, unknown>;

/** Plain objects are walked; arrays and scalars are leaves (a list changes as a whole). */
function leaves(value: unknown, prefix: string, out: Leaves): Leaves {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(value).length === 0 && prefix) out.set(prefix, {});
  } else out.set(prefix, value);
  return out;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Compares the running configuration with a new one (both validated). `running`/`next` modules:
 * each enabled module with its parsed options (selectModules in server.ts).
 */
export function planReload(
  running: Config,
  next: Config,
  runningModules: readonly { def: ModuleDefinition; options: unknown }[],
  nextModules: readonly { def: ModuleDefinition; options: unknown }[],
): ReloadPlan {
  const plan: ReloadPlan = { apply: [], moduleOptions: new Map(), restart: [] };
  const { modules: _a, ...runningCore } = running;
  const { modules: _b, ...nextCore } = next;
  const before = leaves(runningCore, '', new Map());
  const after = leaves(nextCore, '', new Map());
  for (const path of new Set([...before.keys(), ...after.keys()])) {
    const change = { path, from: before.get(path), to: after.get(path) };
    if (same(change.from, change.to)) continue;
    (RELOADABLE.includes(path) ? plan.apply : plan.restart).push(change);
  }
  // Modules: enabling or disabling one needs a restart; an option can change only if the module
  // declares it reloadable (it reads it at use).
  const was = new Map(runningModules.map((m) => [m.def.name, m]));
  const now = new Map(nextModules.map((m) => [m.def.name, m]));
  for (const name of new Set([...was.keys(), ...now.keys()])) {
    const a = was.get(name);
    const b = now.get(name);
    if (!a || !b) {
      plan.restart.push({
        path: `modules.${name}`,
        from: a ? 'enabled' : 'disabled',
        to: b ? 'enabled' : 'disabled',
      });
      continue;
    }
    const oa = (a.options ?? {}) as Record<string, unknown>;
    const ob = (b.options ?? {}) as Record<string, unknown>;
    for (const key of new Set([...Object.keys(oa), ...Object.keys(ob)])) {
      if (same(oa[key], ob[key])) continue;
      const change = { path: `modules.${name}.${key}`, from: oa[key], to: ob[key] };
      if ((a.def.reloadable as readonly string[] | undefined)?.includes(key)) {
        plan.apply.push(change);
        const opts = plan.moduleOptions.get(name) ?? {};
        opts[key] = ob[key];
        plan.moduleOptions.set(name, opts);
      } else plan.restart.push(change);
    }
  }
  return plan;
}

/** Sets `path` (dotted) in `target` to `value`. */
export function assignPath(target: object, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = target as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    const child = at[k];
    if (child === null || typeof child !== 'object') at[k] = {};
    at = at[k] as Record<string, unknown>;
  }
  at[keys[keys.length - 1]!] = value;
}

/** Settings whose string values are safe to log (never a secret, a URL or a path). */
const SHOWN_STRINGS = new Set(['log.level', 'auth.allowPlaintext']);

/** A value as a reload line shows it: numbers, booleans and known enums; anything else is not shown. */
function shown(path: string, value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  // A module's path alone: enabled or disabled.
  if (typeof value === 'string' && (SHOWN_STRINGS.has(path) || /^modules\.[^.]+$/.test(path))) return value;
  return undefined;
}

/** "limits.maxAuthFailures: 3 → 5", or "… changed" when the values are not shown (secrets, lists). */
export function describeChange(c: ConfigChange): string {
  const from = shown(c.path, c.from);
  const to = shown(c.path, c.to);
  return from !== undefined && to !== undefined ? `${c.path}: ${from} → ${to}` : `${c.path} changed`;
}
