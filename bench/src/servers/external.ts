/**
 * Any already running XMPP server (`--server external`): nothing is installed, configured or
 * provisioned; the users `${prefix}1..N` must exist with the given password. CPU and RSS figures
 * need `--pid` (the server's PID on this machine); without it they are reported as missing.
 */
import type { AdapterOptions, BenchUsers, Rosters, ServerAdapter, ServerTarget } from './types.js';

export interface ExternalTarget {
  host: string;
  port: number;
  tlsPort?: number;
  domain: string;
  mucDomain: string;
  pid: number;
}

export class ExternalAdapter implements ServerAdapter {
  readonly name = 'external' as const;
  constructor(private readonly t: ExternalTarget) {}
  async ensureInstalled(): Promise<void> {}
  async version(): Promise<string> {
    return `external server at ${this.t.host}:${this.t.port} (${this.t.domain})`;
  }
  tuning(): string[] {
    return [
      'external server: its configuration is not managed by the bench (check its rate limits yourself)',
    ];
  }
  async configure(_o: AdapterOptions): Promise<void> {}
  async provision(_u: BenchUsers, _r: Rosters | null): Promise<void> {}
  async start(): Promise<ServerTarget> {
    return { name: 'external', ...this.t };
  }
  async stop(): Promise<void> {}
}
