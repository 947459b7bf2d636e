import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DocumentReader } from './document-reader.js';
import type { Element } from './element.js';

function read(doc: string, chunk = 7, maxElementChars?: number): { names: string[]; outer: string[] } {
  const names: string[] = [];
  const outer: string[] = [];
  const r = new DocumentReader(
    {
      collect: ({ name }) => name === 'user',
      element: (el: Element, ancestors) =>
        names.push(
          `${ancestors.map((a) => a.name).join('/')}/${el.name}:${el.getChildText('n', el.xmlns) ?? ''}`,
        ),
      start: (el) => outer.push(`+${el.name}`),
      end: (el) => outer.push(`-${el.name}`),
    },
    maxElementChars !== undefined ? { maxElementChars } : {},
  );
  for (let i = 0; i < doc.length; i += chunk) r.write(doc.slice(i, i + chunk));
  r.end();
  return { names, outer };
}

describe('DocumentReader', () => {
  test('builds only the subtrees asked for, with their ancestors, whatever the chunking', () => {
    const doc = `<?xml version='1.0'?><a xmlns='urn:x'><host jid='h'><user><n>1</n></user>text<user><n>2</n></user></host></a>`;
    for (const chunk of [1, 3, 1000]) {
      const { names, outer } = read(doc, chunk);
      assert.deepEqual(names, ['a/host/user:1', 'a/host/user:2']);
      assert.deepEqual(outer, ['+a', '+host', '-host', '-a']);
    }
  });

  test('the root itself may be collected', () => {
    const { names, outer } = read(`<user xmlns='urn:x'><n>3</n></user>`);
    assert.deepEqual(names, ['/user:3']);
    assert.deepEqual(outer, []);
  });

  test('refuses DTDs (no entity expansion), an unfinished document, and a subtree over the limit', () => {
    assert.throws(() => read(`<!DOCTYPE a [<!ENTITY e "x">]><a/>`), /DTD/);
    assert.throws(() => read(`<a><user>`), /ends before/);
    assert.throws(() => read(`<a><user><n>${'x'.repeat(500)}</n></user></a>`, 50, 100), /exceeds 100/);
  });
});
