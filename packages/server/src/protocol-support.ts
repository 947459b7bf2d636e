import { builtinModules } from './modules/index.js';
import { providedBy, specNumber, XEP_0479, type Implementation, type Requirement } from './xep-0479.js';

/** Core protocol support that lives outside modules (streams, SASL, routing). */
const CORE: [string, string, string][] = [
  [
    'RFC 6120',
    'XMPP Core: streams, STARTTLS, SASL (SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, PLAIN), resource binding, stanza routing and errors',
    'packages/server/src/core',
  ],
  [
    'RFC 6121',
    'XMPP IM: message and presence delivery rules (§8); roster and subscriptions in modules roster, presence',
    'packages/server/src/core/host.ts',
  ],
  [
    'RFC 7395',
    'XMPP over WebSocket (http listener; wss:// on the https listener)',
    'packages/server/src/listeners',
  ],
  [
    'XEP-0124',
    'BOSH at /http-bind (http and https listeners): sessions, in-order rids within the window, resent requests, acknowledgements, key sequences, inactivity and overactivity',
    'packages/server/src/listeners/bosh-transport.ts',
  ],
  [
    'XEP-0206',
    'XMPP over BOSH: the stream machine over BOSH as over WebSocket, xmpp:restart, remote-stream-error',
    'packages/server/src/listeners/bosh-sessions.ts',
  ],
  [
    'XEP-0156',
    'Alternative connection methods: /.well-known/host-meta and host-meta.json with the WebSocket and BOSH URLs',
    'packages/server/src/listeners/listeners.ts',
  ],
  ['RFC 7622', 'Addresses (JIDs), PRECIS profiles', 'packages/jid'],
  [
    'RFC 7590',
    'TLS for XMPP: TLS 1.2 and 1.3 with AEAD suites only, STARTTLS required before credentials (except on loopback), certificates checked on server-to-server streams (RFC 6125)',
    'packages/server/src/tls.ts',
  ],
  ['XEP-0368', 'Direct TLS (c2s-tls listener)', 'packages/server/src/listeners'],
  [
    'RFC 6120',
    'Server-to-server streams (federation): STARTTLS, SASL EXTERNAL or dialback, stanza addressing checks; one outbound stream per remote domain, SRV resolution (docs/federation.md)',
    'packages/server/src/core/s2s',
  ],
  [
    'XEP-0220',
    'Server Dialback: originating, receiving and authoritative roles, piggybacking, dialback stream feature and errors',
    'packages/server/src/core/stream/steps',
  ],
  [
    'XEP-0178',
    'SASL EXTERNAL for server-to-server, with the peer certificate checked for its domain (RFC 6125)',
    'packages/server/src/core/stream/s2s-in-stream.ts',
  ],
  [
    'XEP-0185',
    'Dialback key generation and validation (HMAC-SHA256, s2s.dialbackSecret)',
    'packages/server/src/core/s2s/dialback-key.ts',
  ],
  [
    'XEP-0344',
    'Impact of TLS and DNSSEC on dialback: a certificate that authenticates the domain accepts a dialback request without the callback (no DNSSEC)',
    'packages/server/src/core/stream/s2s-in-stream.ts',
  ],
  [
    'XEP-0368',
    'Direct TLS for server-to-server: s2s-tls listener, _xmpps-server SRV records and tls:// routes',
    'packages/server/src/core/s2s/resolve.ts',
  ],
  [
    'XEP-0114',
    'Jabber Component Protocol, accept side: component listener, handshake, routing of the component domain',
    'packages/server/src/core/stream/xep-0114-component-stream.ts',
  ],
  [
    'XEP-0388',
    'Extensible SASL Profile (SASL2): the same mechanisms, channel binding and limits as RFC 6120 SASL, user agents, no stream restart; modules add inline features (ModuleContext.sasl2)',
    'packages/server/src/core/stream/steps/sasl2.ts',
  ],
  [
    'XEP-0386',
    'Bind 2: resource from the tag and the user agent (the same installation replaces its old session), inline features from modules (carbons, CSI, stream management)',
    'packages/server/src/core/stream/steps/sasl2.ts',
  ],
  [
    'XEP-0440',
    'SASL channel binding types: tls-exporter (RFC 9266, TLS 1.3) and tls-server-end-point (RFC 5929)',
    'packages/server/src/core/sasl-offer.ts',
  ],
  [
    'XEP-0077',
    'In-band registration before authentication (off by default)',
    'packages/server/src/core/stream/steps/register.ts',
  ],
  [
    'XEP-0227',
    'Portable Import/Export Format (v1.1): `natter import xep227` (SCRAM credentials, ejabberd export_piefxis, XInclude) and `natter export xep227`; rosters, vCards, private XML, offline messages',
    'packages/server/src/admin/xep-0227.ts',
  ],
];

/** Every spec number implemented, by whom (the core, or a module). */
function implementations(): Map<string, Implementation[]> {
  const found = new Map<string, Implementation[]>();
  const add = (entry: string, impl: Implementation) => {
    const n = specNumber(entry);
    const list = found.get(n) ?? [];
    if (!list.some((i) => i.where === impl.where)) list.push(impl);
    found.set(n, list);
  };
  for (const [spec] of CORE) add(spec, { where: 'core', onByDefault: true });
  for (const m of builtinModules)
    for (const spec of m.specs) add(spec, { where: m.name, onByDefault: m.enabledByDefault !== false });
  return found;
}

const LEVEL: Record<Requirement, string> = { yes: 'required', no: '—', 'n/a': 'n/a' };

/** The XEP-0479 section: each server feature, its providers and where Natter has them. */
function complianceSection(): string[] {
  const found = implementations();
  const lines = [
    '## XEP-0479: Compliance Suites 2023 (server)',
    '',
    'Which providers Natter has is read from the table above and the modules’ `specs`. A module that is off by default counts, marked *(off by default)*: its `modules.<name>` turns it on.',
    '',
  ];
  const summary: string[] = [];
  for (const cat of XEP_0479) {
    const features = cat.features.filter((f) => f.server === 'yes' || f.advanced === 'yes');
    lines.push(
      `### ${cat.name}`,
      '',
      '| Feature | Server | Advanced Server | Providers | In Natter |',
      '|---|---|---|---|---|',
    );
    const missing = { server: [] as string[], advanced: [] as string[] };
    for (const f of features) {
      const cells: string[] = [];
      let all = true;
      for (const pr of f.providers) {
        const impl = providedBy(pr, found);
        const label = pr.note ? `${pr.spec} (${pr.note})` : pr.spec;
        if (impl.length === 0) {
          all = false;
          cells.push(`${label}: **no**`);
        } else {
          const where = impl
            .map((i) =>
              i.where === 'core' ? 'core' : `\`${i.where}\`${i.onByDefault ? '' : ' *(off by default)*'}`,
            )
            .join(', ');
          cells.push(`${label}: ${where}`);
        }
      }
      if (!all && f.server === 'yes') missing.server.push(f.name);
      if (!all && f.advanced === 'yes') missing.advanced.push(f.name);
      lines.push(
        `| ${f.name} | ${LEVEL[f.server]} | ${LEVEL[f.advanced]} | ${f.providers.map((x) => x.spec).join(', ')} | ${all ? 'yes' : '**no**'}: ${cells.join('; ')} |`,
      );
    }
    lines.push('');
    const verdict = (m: string[]) => (m.length === 0 ? 'yes' : `no (missing: ${m.join(', ')})`);
    summary.push(`| ${cat.name} | ${verdict(missing.server)} | ${verdict(missing.advanced)} |`);
  }
  return [
    ...lines.slice(0, 4),
    '| Category | Server | Advanced Server |',
    '|---|---|---|',
    ...summary,
    '',
    ...lines.slice(4),
  ];
}

/** Renders docs/protocol-support.md from the modules' own metadata, so it cannot drift. */
export function renderProtocolSupport(): string {
  const lines = [
    '# Protocol support',
    '',
    "<!-- Generated by `npm run docs:protocols` from each module's `specs` and `description`; do not edit by hand. -->",
    '',
    '## Server core',
    '',
    '| Spec | What | Where |',
    '|---|---|---|',
    ...CORE.map(([spec, what, where]) => `| ${spec} | ${what} | \`${where}\` |`),
    '',
    '## Server modules',
    '',
    'Each module is a folder `packages/server/src/modules/<name>/` and a configuration key `modules.<name>`.',
    '',
    '| Module | Specs | What | On by default |',
    '|---|---|---|---|',
    ...[...builtinModules]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(
        (m) =>
          `| [\`${m.name}\`](../packages/server/src/modules/${m.name}/) | ${m.specs.join(', ')} | ${m.description} | ${m.enabledByDefault === false ? 'no' : 'yes'} |`,
      ),
    '',
    ...complianceSection(),
  ];
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  process.stdout.write(renderProtocolSupport());
}
