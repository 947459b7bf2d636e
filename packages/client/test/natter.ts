// A Natter server (packages/server) as a target for the client suites: in-process, port 0,
// a temporary data folder, its own self-signed certificate.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Target } from './target.js';
import { freePort } from './ports.js';

export interface NatterOptions {
  users?: number;
  /** Also an https listener (WebSocket over TLS, `service.wss`). */
  https?: boolean;
  /** The `limits` configuration (default: all limits off). */
  limits?: Record<string, unknown>;
  /** Module options, beside the upload module's. */
  modules?: Record<string, unknown>;
}

export async function startNatter(opts: NatterOptions = {}): Promise<Target> {
  // Imported by name only when this target is used, so the client suites do not depend on the server package.
  const { startServer } = (await import('@natter/server' as string)) as typeof import('@natter/server');
  const domain = 'localhost';
  const dir = await mkdtemp(join(tmpdir(), 'natter-server-'));
  // The upload module (XEP-0363) builds slot URLs from the http listener's port, so that port is
  // chosen beforehand (another one if it was taken meanwhile).
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  for (let attempt = 0; !server; attempt++) {
    const httpPort = await freePort();
    try {
      server = await startServer(
        {
          hosts: [domain],
          dataDir: dir,
          listeners: [
            { type: 'c2s', port: 0, host: '127.0.0.1' },
            { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
            { type: 'http', port: httpPort, host: '127.0.0.1' },
            ...(opts.https ? [{ type: 'https' as const, port: 0, host: '127.0.0.1' }] : []),
          ],
          limits: opts.limits ?? { disabled: true },
          log: { level: 'silent' },
          modules: { upload: { maxFileBytes: UPLOAD_LIMIT }, ...opts.modules },
        },
        {},
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 4) throw err;
    }
  }
  const n = opts.users ?? 40;
  const users = Array.from({ length: n }, (_, i) => ({
    jid: `user${i + 1}@${domain}`,
    password: `pw-${i + 1}-secret`,
  }));
  for (const u of users) await server.addUser(u.jid.split('@')[0]!, u.password);
  return {
    name: 'natter',
    domain,
    service: {
      tcp: `xmpp://127.0.0.1:${server.port('c2s')}`,
      tls: `xmpps://127.0.0.1:${server.port('c2s-tls')}`,
      ws: `ws://127.0.0.1:${server.port('http')}/xmpp-websocket`,
      // The certificate names the domain, not the address.
      ...(opts.https ? { wss: `wss://${domain}:${server.port('https')}/xmpp-websocket` } : {}),
    },
    users,
    mucDomain: `conference.${domain}`,
    upload: { domain: `upload.${domain}`, maxFileSize: UPLOAD_LIMIT },
    push: true,
    pubsubDomain: `pubsub.${domain}`,
    tls: { ca: await readFile(server.certificate.cert, 'utf8') },
    async setPassword(jid, password) {
      const [local, host] = jid.split('@') as [string, string];
      await server.core.accounts.setPassword(local, host, password);
    },
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The largest file the upload module takes, in bytes. */
const UPLOAD_LIMIT = 1024 * 1024;
