/** A small typed event emitter: event names are keys of `E`, so a typo does not compile. */
export type Listener<T> = (payload: T) => void;

export class Emitter<E extends object> {
  #listeners = new Map<keyof E, Set<Listener<never>>>();

  /** `errorSink` receives what listeners throw (else it is rethrown asynchronously). */
  constructor(private readonly errorSink?: (err: Error) => void) {}

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  /** Adds a listener called at most once. */
  once<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const l of [...set]) {
      try {
        (l as Listener<E[K]>)(payload);
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        if (this.errorSink) this.errorSink(e);
        else
          queueMicrotask(() => {
            throw e;
          });
      }
    }
  }

  /** Resolves with the next payload of `event` that passes `filter`; rejects after `timeoutMs`. */
  waitFor<K extends keyof E>(
    event: K,
    opts: { filter?: (payload: E[K]) => boolean; timeoutMs?: number } = {},
  ): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const off = this.on(event, (p) => {
        if (opts.filter && !opts.filter(p)) return;
        off();
        if (timer) clearTimeout(timer);
        resolve(p);
      });
      if (opts.timeoutMs !== undefined)
        timer = setTimeout(() => {
          off();
          reject(new Error(`no ${String(event)} event within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
    });
  }
}
