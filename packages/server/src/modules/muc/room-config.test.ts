import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS, StanzaError, parseForm } from '@natter/protocol';
import { applyConfigForm, configForm, defaultConfig } from './room-config.js';

const submit = (fields: Record<string, string | string[]>) =>
  xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    Object.entries(fields).map(([k, v]) =>
      xml(
        'field',
        { var: k },
        (Array.isArray(v) ? v : [v]).map((s) => xml('value', null, s)),
      ),
    ),
  );
const limits = { maxUsers: 200, historyMax: 20 };

describe('MUC room configuration form (XEP-0045 §10.2, §15.5.3 muc#roomconfig)', () => {
  test('the form carries FORM_TYPE and the current values', () => {
    const form = parseForm(
      configForm({ ...defaultConfig(200, 20), name: 'Hall' }, 'hall@muc', ['a@x'], ['o@x'], 200),
    );
    const v = (n: string) => form.fields.find((f) => f.var === n)?.values;
    assert.deepEqual(v('FORM_TYPE'), ['http://jabber.org/protocol/muc#roomconfig']);
    assert.deepEqual(v('muc#roomconfig_roomname'), ['Hall']);
    assert.deepEqual(v('muc#roomconfig_maxusers'), ['200']);
    assert.deepEqual(v('muc#roomconfig_roomowners'), ['o@x']);
  });

  test('with no service limit, maxusers offers every size and none', () => {
    const form = parseForm(configForm(defaultConfig(0, 20), 'hall@muc', [], ['o@x'], 0));
    const field = form.fields.find((f) => f.var === 'muc#roomconfig_maxusers')!;
    assert.deepEqual(field.values, ['none']);
    assert.ok(
      field.options!.some((o) => o.value === '1000') && field.options!.some((o) => o.value === 'none'),
    );
    assert.equal(
      applyConfigForm(submit({ 'muc#roomconfig_maxusers': 'none' }), defaultConfig(50, 20), {
        maxUsers: 0,
        historyMax: 20,
      }).config.maxUsers,
      0,
    );
  });

  test('a submission sets the fields it carries; booleans accept 1/0/true/false; unknown fields are ignored', () => {
    const { config, owners } = applyConfigForm(
      submit({
        'muc#roomconfig_persistentroom': 'true',
        'muc#roomconfig_publicroom': '0',
        'muc#roomconfig_whois': 'anyone',
        'muc#roomconfig_roomowners': ['a@x', 'b@x'],
        'muc#roomconfig_pubsub': 'x',
        'muc#roomconfig_allowpm': 'moderators',
      }),
      defaultConfig(200, 20),
      limits,
    );
    assert.equal(config.persistent, true);
    assert.equal(config.public, false);
    assert.equal(config.whois, 'anyone');
    assert.equal(config.allowPm, 'moderators');
    assert.equal(config.name, '');
    assert.deepEqual(owners, ['a@x', 'b@x']);
  });

  test('passwordprotectedroom=0 clears the password; =1 needs a secret', () => {
    const base = { ...defaultConfig(200, 20), password: 'old' };
    assert.equal(
      applyConfigForm(submit({ 'muc#roomconfig_passwordprotectedroom': '0' }), base, limits).config.password,
      '',
    );
    assert.equal(
      applyConfigForm(submit({ 'muc#roomconfig_roomsecret': 'new' }), base, limits).config.password,
      'new',
    );
    assert.throws(
      () =>
        applyConfigForm(
          submit({ 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': '' }),
          base,
          limits,
        ),
      StanzaError,
    );
  });

  test('bad values are not-acceptable', () => {
    for (const f of [
      { 'muc#roomconfig_moderatedroom': 'yes' },
      { 'muc#roomconfig_maxusers': '201' },
      { 'muc#roomconfig_maxusers': 'none' },
      { 'muc#maxhistoryfetch': '21' },
      { 'muc#roomconfig_allowpm': 'everyone' },
      { 'muc#roomconfig_roomdesc': 'd'.repeat(2000) },
      { FORM_TYPE: 'urn:other' },
    ] as Record<string, string>[]) {
      assert.throws(
        () => applyConfigForm(submit(f), defaultConfig(200, 20), limits),
        (e: unknown) => e instanceof StanzaError && e.condition === 'not-acceptable',
        JSON.stringify(f),
      );
    }
  });
});
