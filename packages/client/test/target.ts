import type { TlsOptions } from '../src/index.node.js';

/** A server the SDK's suites run against (Prosody now, Natter when it lands). */
export interface Target {
  name: string;
  domain: string;
  /** Service URLs by transport. `tls` (direct TLS) may be missing. */
  service: { tcp: string; tls?: string; ws: string; wss?: string };
  /** Accounts, each used by one test at most so tests do not see each other's rosters. */
  users: { jid: string; password: string }[];
  /** A second domain whose accounts only support SCRAM-SHA-1, if the server can be set up so. */
  sha1User?: { jid: string; password: string };
  mucDomain: string;
  /** An account allowed to create nodes on pubsubDomain, when the server restricts creation (Prosody: admins only). */
  pubsubCreator?: { jid: string; password: string };
  pubsubDomain: string;
  /** The XEP-0363 upload service and its size limit, when the server has one. */
  upload?: { domain: string; maxFileSize: number };
  /** Whether the server supports XEP-0357 push (`urn:xmpp:push:0` on accounts). */
  push?: boolean;
  /** TLS trust for the server's self-signed certificate. */
  tls: TlsOptions;
  /** Changes an account's password on the server (to test authentication failures). */
  setPassword?(jid: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

/** Hands out accounts of a target one at a time. */
export class Accounts {
  #next = 0;
  constructor(private readonly target: Target) {}
  take(): { jid: string; password: string } {
    const u = this.target.users[this.#next++];
    if (!u) throw new Error(`target ${this.target.name} has only ${this.target.users.length} accounts`);
    return u;
  }
}
