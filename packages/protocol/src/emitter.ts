/**
 * A small typed event emitter that runs in Node and browsers: event names are keys of `E`, so a
 * typo does not compile. Shared by `@natter/client` and `@natter/component`.
 */
export type Listener<T> = (payload: T) => void;

export interface WaitForOptions<T> {
  /** Only resolve for payloads this returns true for. */
  filter?: (payload: T) => boolean;
  /** Reject with a TimeoutError after this many milliseconds. */
  timeout?: number;
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'timeout';
}

export class Emitter<E extends object> {
  #listeners = new Map<keyof E, Set<Listener<never>>>();
  /** `errorSink` receives what listeners throw (e.g. an SDK's `error` event). */
  constructor(private readonly errorSink?: (err: Error) => void) {}

  /** Called when a listener throws: to the error sink, or else rethrown asynchronously. */
  protected onListenerError(err: unknown, event: keyof E): void {
    void event;
    if (this.errorSink) {
      this.errorSink(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    queueMicrotask(() => {
      throw err;
    });
  }

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

  emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const l of [...set]) {
      try {
        (l as Listener<E[K]>)(payload);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  listenerCount<K extends keyof E>(event: K): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Resolves with the next payload of `event` (that passes `filter`). */
  waitFor<K extends keyof E>(event: K, opts: WaitForOptions<E[K]> = {}): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const off = this.on(event, (payload) => {
        if (opts.filter && !opts.filter(payload)) return;
        off();
        if (timer !== undefined) clearTimeout(timer);
        resolve(payload);
      });
      if (opts.timeout !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(new TimeoutError(`no ${String(event)} event within ${opts.timeout} ms`));
        }, opts.timeout);
      }
    });
  }
}
