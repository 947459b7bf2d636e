import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the http listener knows of a request besides the request itself. */
export interface HttpRequestContext {
  /** The client's address (from a trusted proxy's header when there is one). */
  ip: string;
  /** Reached over TLS, directly or through a trusted proxy that says so. */
  secure: boolean;
  /**
   * Where clients reach this listener, as XEP-0156 host-meta advertises it: from the listener's
   * `publicUrl`, else from the request's Host header and `secure`. Undefined when there is no
   * `publicUrl` and the Host header is missing or not a host name or address (with an optional port).
   */
  endpoints: HttpEndpoints | undefined;
}

/** The URLs of an http(s) listener as clients reach it (no trailing slash on `base`). */
export interface HttpEndpoints {
  /** `https://chat.example.com:5443`, with the path prefix a `publicUrl` may have. */
  base: string;
  /** RFC 7395: `wss://…/xmpp-websocket` (ws:// on plain http). */
  websocket: string;
  /** XEP-0206: `https://…/http-bind`. */
  bosh: string;
}

export type HttpHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  context: HttpRequestContext,
) => void | Promise<void>;

/**
 * HTTP paths served by modules on the `http` listeners (an upload service, a web page): each module
 * claims a path prefix; the listener hands a request to the longest prefix that matches, after its
 * own paths (`/health`, the WebSocket endpoint). The core knows no feature; the listener knows no module.
 */
export class HttpRoutes {
  private readonly routes = new Map<string, { handler: HttpHandler; owner: string }>();
  private ordered: string[] = [];

  /** Claims `prefix` (starting and ending with '/', e.g. '/upload/'); returns the function that gives it back. */
  add(prefix: string, handler: HttpHandler, owner: string): () => void {
    if (!prefix.startsWith('/') || !prefix.endsWith('/'))
      throw new Error(`HTTP path prefix must start and end with '/': ${prefix}`);
    const taken = this.routes.get(prefix);
    if (taken) throw new Error(`HTTP path ${prefix} is already served by module ${taken.owner}`);
    this.routes.set(prefix, { handler, owner });
    this.sort();
    return () => {
      if (this.routes.get(prefix)?.handler !== handler) return;
      this.routes.delete(prefix);
      this.sort();
    };
  }

  /** The handler of the longest prefix of `path` (path without the query string). */
  match(path: string): { handler: HttpHandler; owner: string } | undefined {
    for (const p of this.ordered) if (path.startsWith(p)) return this.routes.get(p);
    return undefined;
  }

  private sort(): void {
    this.ordered = [...this.routes.keys()].sort((a, b) => b.length - a.length);
  }
}
