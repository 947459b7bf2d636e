import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { parseConfig } from './config.js';
import { defineModule, type ModuleDefinition } from './core/module.js';
import { describeChange, planReload } from './reload.js';

const demo = defineModule({
  name: 'demo',
  description: 'a module with one option read at use and one copied at setup',
  specs: [],
  options: z.object({ maxItems: z.number().default(10), cacheSize: z.number().default(5) }).prefault({}),
  reloadable: ['maxItems'],
  setup() {},
}) as ModuleDefinition;

const enabled = (options: object) => [{ def: demo, options: demo.options!.parse(options) }];

describe('planReload: what a SIGHUP applies and what waits for a restart', () => {
  test('the admins list is applied at once (XEP-0133 checks it at each request)', () => {
    const running = parseConfig({ hosts: ['a.test'] });
    const next = parseConfig({ hosts: ['a.test'], admins: ['root@a.test'] });
    const plan = planReload(running, next, [], []);
    assert.deepEqual(
      plan.apply.map((c) => c.path),
      ['admins'],
    );
    assert.deepEqual(plan.restart, []);
  });

  test('reloadable core settings are applied; listeners, hosts and storage need a restart', () => {
    const running = parseConfig({ hosts: ['a.test'] });
    const next = parseConfig({
      hosts: ['a.test', 'b.test'],
      log: { level: 'debug' },
      limits: { maxAuthFailures: 5 },
      storage: { engine: 'postgres', url: 'postgres://u:secret@db/natter' },
      listeners: [{ type: 'c2s', port: 5222 }],
    });
    const plan = planReload(running, next, [], []);
    assert.deepEqual(
      plan.apply.map(describeChange),
      ['limits.maxAuthFailures: 3 → 5', 'log.level: info → debug'].sort(),
    );
    assert.deepEqual(plan.restart.map((c) => c.path).sort(), [
      'hosts',
      'listeners',
      'storage.engine',
      'storage.url',
    ]);
  });

  test('secrets and paths are never shown, only named', () => {
    const running = parseConfig({ components: { 'gw.a.test': { secret: 'old-secret' } } });
    const next = parseConfig({ components: { 'gw.a.test': { secret: 'new-secret' } } });
    const [change] = planReload(running, next, [], []).restart;
    assert.equal(describeChange(change!), 'components.gw.a.test.secret changed');
  });

  test("a module's option is applied only when the module declares it reloadable", () => {
    const config = parseConfig({});
    const plan = planReload(config, config, enabled({}), enabled({ maxItems: 50, cacheSize: 9 }));
    assert.deepEqual(plan.apply.map(describeChange), ['modules.demo.maxItems: 10 → 50']);
    assert.deepEqual(plan.moduleOptions.get('demo'), { maxItems: 50 });
    assert.deepEqual(
      plan.restart.map((c) => c.path),
      ['modules.demo.cacheSize'],
    );
  });

  test('enabling or disabling a module needs a restart', () => {
    const config = parseConfig({});
    assert.deepEqual(planReload(config, config, enabled({}), []).restart.map(describeChange), [
      'modules.demo: enabled → disabled',
    ]);
  });

  test('the same configuration: nothing to do', () => {
    const config = parseConfig({ hosts: ['a.test'], tls: { certificates: [] } });
    const plan = planReload(config, parseConfig({ hosts: ['a.test'] }), enabled({}), enabled({}));
    assert.deepEqual([plan.apply, plan.restart], [[], []]);
  });
});
