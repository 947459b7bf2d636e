import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { Session, SessionRecord } from './session.js';
import type { ClientStreamView } from './stream/stream-view.js';

/** A stanza on its way through the router. */
export interface RouteEvent {
  stanza: Element;
  /** Sender, stamped by the server (never trusted from a client). */
  from: Jid;
  /** Destination (defaulted to the sender's bare JID where RFC 6120 §10.3 says so). */
  to: Jid;
  /** The local client session that sent it, if any. */
  origin: Session | undefined;
  /**
   * Routed again by the server after a session failed to deliver it (XEP-0198 §5): it went through
   * the hooks once already, so archives and carbons must not record or copy it a second time.
   */
  resent?: boolean;
  /**
   * For messages: what became of it, shared by every copy of the event made while routing it (set
   * by the router). `bounced` is true once an error went back to the sender.
   */
  outcome?: RouteOutcome;
  /**
   * Set when a privileged entity (XEP-0356, an external component) sent this stanza in the name
   * of the account in `from`: the component's domain. `origin` is then undefined.
   */
  onBehalfOf?: string;
}

export interface RouteOutcome {
  bounced: boolean;
}

export type HandleResult = boolean | void;
export type MaybePromise<T> = T | Promise<T>;
export type HandleHook<E> = (event: E) => MaybePromise<HandleResult>;
export type NotifyHook<E> = (event: E) => MaybePromise<void>;

/**
 * Every hook a module can register, by name. Handlers run from highest to lowest priority;
 * a "handle" hook stops at the first handler returning true. Names are keys of this
 * interface, so a typo does not compile.
 */
export interface HookMap {
  /**
   * The sending account's stage: a stanza a local client session sent (or a privileged component
   * sent in a local account's name, `onBehalfOf`), before routing. Carbons, MAM's sent copies,
   * directed-presence tracking and blocking's not-acceptable live here. Return true to consume it.
   */
  'stanza/out': HandleHook<RouteEvent>;
  /**
   * The filter stage (DESIGN.md): runs once per stanza, before dispatch, on the host of the
   * stanza's recipient, whatever its origin (local client, component, remote server, a service or
   * the server itself). Blocking, privacy and abuse checks live here, so that no sender slips past
   * a check only local clients meet. A stanza the server itself sends in a local account's name
   * (no client origin: presence broadcasts, probes, PEP notifications) to an address on no local
   * host (a remote server, a component, a service) meets the stage of the sender's host instead,
   * so the sender's policy (no presence to a blocked contact) holds for remote contacts too.
   * Return true to consume the stanza; a handler that refuses answers with `ctx.bounce`, which
   * never answers an error or a result, so two filters cannot bounce a stanza back and forth.
   */
  'stanza/in': HandleHook<RouteEvent>;
  'message/host': HandleHook<RouteEvent>;
  'message/bare': HandleHook<RouteEvent>;
  'message/full': HandleHook<RouteEvent>;
  'presence/host': HandleHook<RouteEvent>;
  'presence/bare': HandleHook<RouteEvent>;
  'presence/full': HandleHook<RouteEvent>;
  /** IQs whose namespace no IQ handler claimed (the core answers service-unavailable last). */
  'iq/host': HandleHook<RouteEvent>;
  'iq/bare': HandleHook<RouteEvent>;
  'iq/full': HandleHook<RouteEvent>;
  /** A chat/normal message for a local account with no available resource (offline storage). */
  'message/offline': HandleHook<RouteEvent>;
  /**
   * A message finished routing (delivered, stored offline, handed to a service, or bounced: see
   * `outcome.bounced`). Runs on the sender's host and, when another, on the recipient's host.
   */
  'message/routed': NotifyHook<RouteEvent & { outcome: RouteOutcome }>;
  /**
   * Stream management is about to acknowledge stanzas the session sent (XEP-0198 `<a/>`): modules
   * that buffer writes commit them first, so an acknowledged stanza survives a crash.
   */
  'session/acknowledging': NotifyHook<{ session: Session }>;
  /** After the core delivered a message to a local account's sessions. */
  'message/delivered': NotifyHook<RouteEvent & { sessions: readonly SessionRecord[] }>;
  /** A resource was bound. */
  'session/bound': NotifyHook<{ session: Session }>;
  /** A session sent its initial presence (became available): offline delivery, PEP last items. */
  'session/available': NotifyHook<{ session: Session }>;
  /**
   * A stanza was queued for a hibernated session (XEP-0198 §5: its stream is gone, it may resume):
   * push notifications (XEP-0357) wake the device.
   */
  'session/held': NotifyHook<{ session: Session; stanza: Element }>;
  /**
   * A session held by another node of the cluster ended (`lost`: its node died, so nobody sent its
   * unavailable presence). Runs on every other node, on the session's host.
   */
  'session/gone': NotifyHook<{ record: SessionRecord; lost: boolean }>;
  /**
   * Another node's session is back after that node was found dead (a partition or a stalled
   * process, not a crash: it kept its sessions): its `session/gone` had been told as lost.
   */
  'session/returned': NotifyHook<{ record: SessionRecord }>;
  /** A session sent unavailable presence (still connected). */
  'session/unavailable': NotifyHook<{ session: Session }>;
  /** A session ended (clean: the client closed the stream or sent unavailable first). */
  'session/closed': NotifyHook<{ session: Session; clean: boolean }>;
  /** A first-level element on a stream that is not a stanza (SM, CSI). Return true when handled. */
  'stream/nonza': HandleHook<{ stream: ClientStreamView; element: Element }>;
  /**
   * The server is stopping: streams are still open, so modules can tell clients (MUC status 332).
   * Runs before every stream is closed with <system-shutdown/>.
   */
  'server/stopping': NotifyHook<Record<string, never>>;
  /** An account was deleted: modules remove its data. */
  'user/deleted': NotifyHook<{ jid: Jid }>;
  /**
   * An account's password was changed (in-band or by the administrator): modules drop what the old
   * password vouched for (FAST tokens).
   */
  'user/password-changed': NotifyHook<{ jid: Jid }>;
  /**
   * An external component (XEP-0114) completed its handshake and now serves `domain`. Runs on
   * every virtual host (XEP-0356 advertises privileges per host).
   */
  'component/connected': NotifyHook<{ domain: string }>;
  /** An external component's stream ended: `domain` is unreachable until it connects again. */
  'component/disconnected': NotifyHook<{ domain: string }>;
}

export type HookName = keyof HookMap;

interface Registration {
  fn: (e: never) => unknown;
  priority: number;
  owner: string;
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export type HookErrorReporter = (hook: string, owner: string, err: unknown) => void;

/** The hook bus: ordered handlers, synchronous when every handler is. */
export class HookBus {
  private readonly table = new Map<HookName, Registration[]>();

  constructor(private readonly report: HookErrorReporter) {}

  add<K extends HookName>(name: K, fn: HookMap[K], priority = 0, owner = 'core'): () => void {
    const list = this.table.get(name) ?? [];
    const reg: Registration = { fn: fn as (e: never) => unknown, priority, owner };
    list.push(reg);
    list.sort((a, b) => b.priority - a.priority);
    this.table.set(name, list);
    return () => {
      const l = this.table.get(name);
      if (!l) return;
      const i = l.indexOf(reg);
      if (i >= 0) l.splice(i, 1);
    };
  }

  has(name: HookName): boolean {
    return (this.table.get(name)?.length ?? 0) > 0;
  }

  /**
   * Runs a handle hook; resolves true when a handler consumed the event. A handler that throws is
   * reported and skipped (the next one runs), as ejabberd does.
   */
  run<K extends HookName>(name: K, event: Parameters<HookMap[K]>[0]): MaybePromise<boolean> {
    const list = this.table.get(name);
    if (!list || list.length === 0) return false;
    return this.runFrom(name, list.slice(), 0, event);
  }

  private runFrom(
    name: HookName,
    list: Registration[],
    start: number,
    event: unknown,
  ): MaybePromise<boolean> {
    for (let i = start; i < list.length; i++) {
      const reg = list[i]!;
      let r: unknown;
      try {
        r = (reg.fn as (e: unknown) => unknown)(event);
      } catch (err) {
        this.report(name, reg.owner, err);
        continue;
      }
      if (isPromise(r)) {
        return r.then(
          (v) => (v === true ? true : this.runFrom(name, list, i + 1, event)),
          (err: unknown) => {
            this.report(name, reg.owner, err);
            return this.runFrom(name, list, i + 1, event);
          },
        );
      }
      if (r === true) return true;
    }
    return false;
  }

  /** Runs every handler of a notify hook, awaiting async ones in order. */
  async notify<K extends HookName>(name: K, event: Parameters<HookMap[K]>[0]): Promise<void> {
    await this.run(name, event);
  }
}
