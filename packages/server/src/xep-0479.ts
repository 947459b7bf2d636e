/**
 * XEP-0479 (XMPP Compliance Suites 2023), server side: for each category, the features a server
 * needs at the Server and Advanced Server levels and the specifications that provide them. Which
 * of them Natter has is not written here but read from the modules' and the core's `specs`
 * (protocol-support.ts), so the table in docs/protocol-support.md cannot claim what is not built.
 */

export type Requirement = 'yes' | 'no' | 'n/a';

export interface Provider {
  /** e.g. 'XEP-0313', 'RFC 6120' */
  spec: string;
  /** Only this module's support counts (e.g. XEP-0313 for rooms: the muc module). */
  module?: string;
  /** Why the suite names it, when it says more than the number. */
  note?: string;
}

export interface Feature {
  name: string;
  server: Requirement;
  advanced: Requirement;
  providers: Provider[];
}

export interface Category {
  name: string;
  features: Feature[];
}

const p = (spec: string, extra: Omit<Provider, 'spec'> = {}): Provider => ({ spec, ...extra });

export const XEP_0479: Category[] = [
  {
    name: 'Core',
    features: [
      { name: 'Core features', server: 'yes', advanced: 'yes', providers: [p('RFC 6120')] },
      { name: 'TLS', server: 'yes', advanced: 'yes', providers: [p('RFC 7590')] },
      { name: 'Direct TLS', server: 'no', advanced: 'yes', providers: [p('XEP-0368')] },
      { name: 'Feature discovery', server: 'yes', advanced: 'yes', providers: [p('XEP-0030')] },
      { name: 'Feature broadcasts', server: 'no', advanced: 'yes', providers: [p('XEP-0115')] },
      { name: 'Server extensibility', server: 'yes', advanced: 'yes', providers: [p('XEP-0114')] },
      { name: 'Event publishing', server: 'no', advanced: 'yes', providers: [p('XEP-0163')] },
    ],
  },
  {
    name: 'Web',
    features: [
      {
        name: 'Web connection mechanisms',
        server: 'yes',
        advanced: 'yes',
        providers: [p('RFC 7395'), p('XEP-0206')],
      },
    ],
  },
  {
    name: 'IM',
    features: [
      { name: 'Core features', server: 'yes', advanced: 'yes', providers: [p('RFC 6121')] },
      {
        name: 'User avatar compatibility',
        server: 'no',
        advanced: 'yes',
        providers: [p('XEP-0398'), p('XEP-0153')],
      },
      { name: 'vcard-temp', server: 'yes', advanced: 'yes', providers: [p('XEP-0054')] },
      {
        name: 'Outbound message synchronization',
        server: 'yes',
        advanced: 'yes',
        providers: [p('XEP-0280')],
      },
      { name: 'User blocking', server: 'no', advanced: 'yes', providers: [p('XEP-0191')] },
      { name: 'Group chat', server: 'yes', advanced: 'yes', providers: [p('XEP-0045'), p('XEP-0249')] },
      {
        name: 'Advanced group chat',
        server: 'no',
        advanced: 'yes',
        providers: [
          p('XEP-0048'),
          p('XEP-0313', { module: 'muc', note: 'history from the room’s archive' }),
          p('XEP-0402'),
          p('XEP-0410'),
        ],
      },
      {
        name: 'Persistent storage of private data via PubSub',
        server: 'no',
        advanced: 'yes',
        providers: [p('XEP-0223')],
      },
      { name: 'Private XML storage', server: 'no', advanced: 'yes', providers: [p('XEP-0049')] },
      { name: 'Stream management', server: 'no', advanced: 'yes', providers: [p('XEP-0198')] },
      { name: 'History storage / retrieval', server: 'no', advanced: 'yes', providers: [p('XEP-0313')] },
      { name: 'File upload', server: 'yes', advanced: 'yes', providers: [p('XEP-0363')] },
    ],
  },
  {
    name: 'Mobile',
    features: [
      { name: 'Stream management', server: 'yes', advanced: 'yes', providers: [p('XEP-0198')] },
      { name: 'Client state indication', server: 'yes', advanced: 'yes', providers: [p('XEP-0352')] },
      { name: 'Third-party push notifications', server: 'no', advanced: 'yes', providers: [p('XEP-0357')] },
    ],
  },
  {
    name: 'A/V Calling',
    features: [
      { name: 'STUN/TURN server discovery', server: 'yes', advanced: 'yes', providers: [p('XEP-0215')] },
    ],
  },
];

/** Where a spec is implemented: the core, or a module (and whether that module is on by default). */
export interface Implementation {
  where: 'core' | string;
  onByDefault: boolean;
}

/** The number a spec entry starts with: 'XEP-0313 (room archives)' → 'XEP-0313'. */
export function specNumber(entry: string): string {
  return /^(XEP-\d{4}|RFC \d+)/.exec(entry)?.[1] ?? entry;
}

/** Who provides `provider`, from the implementations found for each spec number. */
export function providedBy(provider: Provider, found: Map<string, Implementation[]>): Implementation[] {
  const all = found.get(provider.spec) ?? [];
  return provider.module === undefined ? all : all.filter((i) => i.where === provider.module);
}
