import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS, parseForm, formType } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { defineModule } from '../../core/module.js';
import type { DiscoApi } from '../disco/api.js';
import { builtinModules } from '../index.js';
import { NS_SERVERINFO, contactUriProblem } from './contact-addresses.js';

const PW = 'secret-password';
const MINE = new Set(['disco', 'contact-addresses']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);
const addresses = {
  abuse: ['mailto:abuse@example.com', 'xmpp:abuse@example.com'],
  admin: ['xmpp:admin@example.com?message'],
  security: ['https://example.com/.well-known/security.txt'],
  status: ['https://status.example.com/'],
  support: ['https://example.com/support', 'mailto:support@example.com'],
};

const discoInfo = (c: TestClient, to = 'localhost') =>
  c.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: NS.discoInfo })));
const forms = (res: Element) => res.getChild('query', NS.discoInfo)?.getChildren('x', NS.dataForms) ?? [];

/** A peer module adding another XEP-0128 form through the disco API (order and uniqueness). */
const otherForm = defineModule({
  name: 'other-form',
  description: 'test: a second extension form',
  specs: [],
  dependencies: ['disco'],
  setup(ctx) {
    const disco = ctx.use<DiscoApi>('disco')!;
    const form = (type: string) =>
      xml(
        'x',
        { xmlns: NS.dataForms, type: 'result' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, type)),
      );
    disco.addHostExtension(form('urn:example:aaa'));
    assert.throws(() => disco.addHostExtension(form('urn:example:aaa')), /already has an extension form/);
    assert.throws(
      () => disco.addHostExtension(xml('x', { xmlns: NS.dataForms, type: 'result' })),
      /hidden FORM_TYPE/,
    );
    assert.throws(
      () => disco.addHostExtension(xml('x', { xmlns: NS.dataForms, type: 'form' })),
      /type='result'/,
    );
  },
});

describe('contact addresses (XEP-0157)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(
      { modules: { ...others, 'contact-addresses': addresses } },
      { modules: [otherForm] },
    );
    await server.addUser('romeo', PW);
  });
  after(() => server?.destroy());

  test("XEP-0157 §3, XEP-0128 §2: the server's disco#info carries the serverinfo form with the configured addresses", async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const res = await discoInfo(c);
    assert.equal(res.attrs.type, 'result');
    const all = forms(res);
    // One form per FORM_TYPE, in FORM_TYPE order, after identities and features.
    assert.deepEqual(
      all.map((f) => formType(parseForm(f))),
      ['http://jabber.org/network/serverinfo', 'urn:example:aaa'],
    );
    const query = res.getChild('query', NS.discoInfo)!;
    const order = query.elements().map((e) => e.name);
    assert.ok(order.lastIndexOf('feature') < order.indexOf('x'), order.join(' '));

    const serverinfo = all.find((f) => formType(parseForm(f)) === NS_SERVERINFO)!;
    assert.equal(serverinfo.attrs.type, 'result');
    const typeField = serverinfo.getChildren('field', NS.dataForms).find((f) => f.attrs.var === 'FORM_TYPE');
    assert.equal(typeField?.attrs.type, 'hidden');
    const fields = parseForm(serverinfo).fields.filter((f) => f.var !== 'FORM_TYPE');
    assert.deepEqual(
      fields.map((f) => [f.var, f.type, f.values]),
      [
        ['abuse-addresses', 'list-multi', addresses.abuse],
        ['admin-addresses', 'list-multi', addresses.admin],
        ['security-addresses', 'list-multi', addresses.security],
        ['status-addresses', 'list-multi', addresses.status],
        ['support-addresses', 'list-multi', addresses.support],
      ],
    );
    // Roles without addresses get no field.
    assert.equal(
      fields.some((f) => f.var === 'sales-addresses' || f.var === 'feedback-addresses'),
      false,
    );
    await c.close();
  });

  test('XEP-0128 §2: the form is on the server only, not on accounts or nodes', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const account = await discoInfo(c, 'romeo@localhost');
    assert.equal(account.attrs.type, 'result');
    assert.equal(forms(account).length, 0);
    const node = await c.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo, node: 'x' })),
    );
    assert.equal(node.attrs.type, 'error');
    // Asked twice, the answer is the same (each answer carries a copy of the form).
    const again = await discoInfo(c);
    assert.equal(forms(again).length, 2);
    await c.close();
  });
});

describe('contact addresses (XEP-0157): configuration', () => {
  const refused = async (modules: Record<string, false | Record<string, unknown>>, message: RegExp) => {
    const err = await startTestServer({ modules: { ...others, ...modules } }).then(
      async (s) => {
        await s.destroy();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    assert.ok(err, 'the server started');
    assert.match(err.message, message);
  };

  test('URIs are checked at start-up, with a message naming the option and what is wrong', async () => {
    await refused(
      { 'contact-addresses': { abuse: ['abuse@example.com'] } },
      /modules\.contact-addresses\.abuse\.0: "abuse@example\.com": not a URI: it needs a scheme .*mailto:abuse@example\.com/,
    );
    await refused(
      { 'contact-addresses': { admin: ['mailto:admin@example.com', 'xmpp:not a jid'] } },
      /modules\.contact-addresses\.admin\.1: "xmpp:not a jid": a URI has no spaces/,
    );
    await refused(
      { 'contact-addresses': { admin: ['xmpp:@example.com'] } },
      /admin\.0: "xmpp:@example\.com": an xmpp: URI needs a valid JID/,
    );
    await refused(
      { 'contact-addresses': { support: ['ftp://example.com/'] } },
      /support\.0: "ftp:\/\/example\.com\/": unsupported scheme "ftp:"/,
    );
    await refused({ 'contact-addresses': { support: ['https:example'] } }, /an https: URI needs a host/);
    await refused(
      { 'contact-addresses': { abuse: ['mailto:nobody'] } },
      /a mailto: URI needs an e-mail address/,
    );
    await refused({ 'contact-addresses': { abuse: 'mailto:abuse@example.com' } }, /abuse/);
    await refused({ 'contact-addresses': { complaints: ['mailto:x@example.com'] } }, /complaints/);
  });

  test('contact-addresses needs the disco module', async () => {
    await refused(
      { disco: false, 'contact-addresses': { abuse: ['mailto:abuse@example.com'] } },
      /module contact-addresses needs module disco/,
    );
  });

  test('the accepted URI forms', () => {
    for (const ok of [
      'mailto:abuse@example.com',
      'mailto:a@example.com,b@example.com?subject=abuse',
      'xmpp:admin@example.com',
      'xmpp:admin@example.com?message',
      'xmpp://romeo@example.com/admin@example.com',
      'xmpp:example.com',
      'https://example.com/support',
      'http://example.com/',
      'tel:+1-201-555-0123',
      'sip:support@example.com',
    ])
      assert.equal(contactUriProblem(ok), undefined, ok);
  });

  test('off by default: no form without configuration, none when no address is configured', async () => {
    for (const modules of [{}, { 'contact-addresses': {} }] as Record<string, Record<string, unknown>>[]) {
      const server = await startTestServer({ modules: { ...others, ...modules } });
      try {
        await server.addUser('romeo', PW);
        const c = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
        const res = await discoInfo(c);
        assert.equal(res.attrs.type, 'result');
        assert.equal(forms(res).length, 0);
        await c.close();
      } finally {
        await server.destroy();
      }
    }
  });
});
