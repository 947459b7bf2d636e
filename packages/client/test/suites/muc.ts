import assert from 'node:assert/strict';
import { test } from 'node:test';
import { muc, reconnect, StanzaError } from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

let n = 0;
const roomName = (ctx: SuiteContext, what: string) => `${what}-${process.pid}-${++n}@${ctx.target.mucDomain}`;

export function mucSuite(ctx: SuiteContext): void {
  const member = () => ctx.online({ plugins: { muc: muc() } });

  test('XEP-0045 §10.1.2/§7.2/§7.4: create an instant room, a second user joins, both exchange groupchat messages', async () => {
    const owner = await member();
    const guest = await member();
    const room = roomName(ctx, 'instant');
    const created = await owner.plugins.muc.createInstant(room, 'owner');
    assert.equal(created.created, true);
    assert.equal(created.occupants.find((o) => o.nick === 'owner')?.affiliation, 'owner');
    const seen = owner.plugins.muc.waitFor('occupant-joined', { timeout: 5000 });
    const joined = await guest.plugins.muc.join(room, 'guest');
    assert.equal(joined.created, false);
    assert.deepEqual(joined.occupants.map((o) => o.nick).sort(), ['guest', 'owner']);
    assert.equal((await seen).occupant.nick, 'guest');
    const heard = guest.plugins.muc.waitFor('message', {
      filter: (m) => m.body === 'welcome',
      timeout: 5000,
    });
    const echo = owner.plugins.muc.waitFor('message', { filter: (m) => m.body === 'welcome', timeout: 5000 });
    await owner.plugins.muc.send(room, 'welcome');
    const m = await heard;
    assert.equal(m.nick, 'owner');
    assert.equal(m.self, false);
    assert.equal((await echo).self, true, 'the room reflects our own message');
    assert.deepEqual(owner.plugins.muc.rooms(), [room]);
  });

  test('XEP-0045 §7.2.15/§8.1: subject changes are announced; history is limited on join', async () => {
    const owner = await member();
    const late = await member();
    const room = roomName(ctx, 'history');
    await owner.plugins.muc.createInstant(room, 'owner');
    const subj = owner.plugins.muc.waitFor('subject', {
      filter: (s) => s.subject === 'Topic',
      timeout: 5000,
    });
    await owner.plugins.muc.setSubject(room, 'Topic');
    assert.equal((await subj).nick, 'owner');
    for (const body of ['one', 'two', 'three']) {
      const echoed = owner.plugins.muc.waitFor('message', { filter: (m) => m.body === body, timeout: 5000 });
      await owner.plugins.muc.send(room, body);
      await echoed;
    }
    const got: string[] = [];
    late.plugins.muc.on('message', (m) => got.push(`${m.body}${m.delayed ? ' (delayed)' : ''}`));
    const subject = late.plugins.muc.waitFor('subject', { timeout: 5000 });
    await late.plugins.muc.join(room, 'late', { history: { maxstanzas: 2 } });
    assert.equal((await subject).subject, 'Topic');
    assert.deepEqual(got, ['two (delayed)', 'three (delayed)']);
  });

  test('XEP-0045 §10.1.3/§10.2: create a reserved room with a configuration form', async () => {
    const owner = await member();
    const room = roomName(ctx, 'reserved');
    await owner.plugins.muc.createReserved(room, 'owner', {
      'muc#roomconfig_roomname': 'Reserved Room',
      'muc#roomconfig_membersonly': true,
    });
    const form = await owner.plugins.muc.getConfig(room);
    assert.equal(form.fields.find((f) => f.var === 'muc#roomconfig_roomname')?.values[0], 'Reserved Room');
    assert.ok(
      ['1', 'true'].includes(
        form.fields.find((f) => f.var === 'muc#roomconfig_membersonly')?.values[0] ?? '',
      ),
    );
    const outsider = await member();
    await assert.rejects(
      outsider.plugins.muc.join(room, 'x'),
      (e: unknown) => e instanceof StanzaError && e.condition === 'registration-required',
    );
    await owner.plugins.muc.setAffiliation(room, outsider.account, 'member');
    await outsider.plugins.muc.join(room, 'x');
  });

  test('XEP-0045 §7.6/§7.5: nick changes and private messages', async () => {
    const a = await member();
    const b = await member();
    const room = roomName(ctx, 'nicks');
    await a.plugins.muc.createInstant(room, 'alpha');
    await b.plugins.muc.join(room, 'beta');
    const renamed = a.plugins.muc.waitFor('nick-changed', { timeout: 5000 });
    await b.plugins.muc.changeNick(room, 'gamma');
    assert.deepEqual({ ...(await renamed) }, { room, oldNick: 'beta', newNick: 'gamma', self: false });
    assert.equal(b.plugins.muc.nick(room), 'gamma');
    assert.ok(a.plugins.muc.occupants(room).some((o) => o.nick === 'gamma'));
    const pm = b.plugins.muc.waitFor('private-message', { timeout: 5000 });
    await a.plugins.muc.sendPrivate(room, 'gamma', 'psst');
    const got = await pm;
    assert.equal(got.nick, 'alpha');
    assert.equal(got.body, 'psst');
  });

  test('XEP-0045 §8.2/§9.1/§9.2: kick, ban, and the ban list', async () => {
    const owner = await member();
    const b = await member();
    const c = await member();
    const room = roomName(ctx, 'moderation');
    await owner.plugins.muc.createInstant(room, 'owner');
    await b.plugins.muc.join(room, 'bee');
    await c.plugins.muc.join(room, 'sea');
    const kicked = b.plugins.muc.waitFor('left', { timeout: 5000 });
    const seen = owner.plugins.muc.waitFor('occupant-left', { timeout: 5000 });
    await owner.plugins.muc.kick(room, 'bee', 'be nice');
    const k = await kicked;
    assert.equal(k.reason, 'kicked');
    assert.equal(k.text, 'be nice');
    assert.equal((await seen).reason, 'kicked');
    const banned = c.plugins.muc.waitFor('left', { timeout: 5000 });
    await owner.plugins.muc.ban(room, c.account, 'spam');
    assert.equal((await banned).reason, 'banned');
    const outcasts = await owner.plugins.muc.affiliationList(room, 'outcast');
    assert.deepEqual(
      outcasts.map((i) => i.jid),
      [c.account.toString()],
    );
    await assert.rejects(
      c.plugins.muc.join(room, 'again'),
      (e: unknown) => e instanceof StanzaError && e.condition === 'forbidden',
    );
  });

  test('XEP-0045 §9.3-§10.7: grant member, admin, owner and moderator; read and modify the lists', async () => {
    const owner = await member();
    const b = await member();
    const room = roomName(ctx, 'lists');
    await owner.plugins.muc.createInstant(room, 'owner');
    await b.plugins.muc.join(room, 'bee');
    const voiced = owner.plugins.muc.waitFor('role-changed', {
      filter: (r) => r.nick === 'bee' && r.role === 'moderator',
      timeout: 5000,
    });
    await owner.plugins.muc.setRole(room, 'bee', 'moderator');
    assert.equal((await voiced).affiliation, 'none');
    await owner.plugins.muc.setRole(room, 'bee', 'participant');
    const changed = b.plugins.muc.waitFor('role-changed', {
      filter: (r) => r.self && r.affiliation === 'admin',
      timeout: 5000,
    });
    await owner.plugins.muc.setAffiliation(room, b.account, 'admin');
    assert.equal((await changed).role, 'moderator');
    assert.deepEqual(
      (await owner.plugins.muc.affiliationList(room, 'admin')).map((i) => i.jid),
      [b.account.toString()],
    );
    const mods = await owner.plugins.muc.roleList(room, 'moderator');
    assert.deepEqual(mods.map((i) => i.nick).sort(), ['bee', 'owner']);
    await owner.plugins.muc.modifyList(room, [
      { jid: b.account.toString(), affiliation: 'member' },
      { jid: `someone@${ctx.target.domain}`, affiliation: 'member' },
    ]);
    assert.deepEqual(
      (await owner.plugins.muc.affiliationList(room, 'member')).map((i) => i.jid).sort(),
      [b.account.toString(), `someone@${ctx.target.domain}`].sort(),
    );
    assert.deepEqual(await owner.plugins.muc.affiliationList(room, 'admin'), []);
    await owner.plugins.muc.setAffiliation(room, b.account, 'owner');
    assert.ok(
      (await owner.plugins.muc.affiliationList(room, 'owner')).some((i) => i.jid === b.account.toString()),
    );
  });

  test('XEP-0045 §7.8.2/§10.9: invite, leave, destroy', async () => {
    const owner = await member();
    const b = await member();
    const c = await member();
    const room = roomName(ctx, 'lifecycle');
    await owner.plugins.muc.createInstant(room, 'owner');
    await available(c); // the invitation goes to c's bare JID: c must be available
    const invited = c.plugins.muc.waitFor('invite', { timeout: 5000 });
    await owner.plugins.muc.invite(room, c.account, 'join us');
    const inv = await invited;
    assert.equal(inv.room, room);
    assert.equal(inv.reason, 'join us');
    // The inviter's address, or the room's when the room hides real JIDs (Prosody's semi-anonymous default).
    assert.ok([owner.account.toString(), room].includes(tryBare(inv.from)), inv.from);
    await c.plugins.muc.join(room, 'sea');
    const left = owner.plugins.muc.waitFor('occupant-left', { timeout: 5000 });
    await c.plugins.muc.leave(room);
    assert.equal((await left).reason, 'left');
    assert.deepEqual(c.plugins.muc.rooms(), []);
    await b.plugins.muc.join(room, 'bee');
    const destroyed = b.plugins.muc.waitFor('destroyed', { timeout: 5000 });
    await owner.plugins.muc.destroy(room, { reason: 'done' });
    assert.equal((await destroyed).reason, 'done');
    assert.deepEqual(b.plugins.muc.rooms(), []);
  });

  test('XEP-0045 §7.2: after a reconnection into a new session, rooms are joined again', async () => {
    const owner = await member();
    const a = await ctx.online({ plugins: { muc: muc(), reconnect: reconnect({ initialDelay: 50 }) } });
    const room = roomName(ctx, 'rejoin');
    await owner.plugins.muc.createInstant(room, 'owner');
    await a.plugins.muc.join(room, 'phoenix');
    const left = owner.plugins.muc.waitFor('occupant-left', {
      filter: (e) => e.occupant.nick === 'phoenix',
      timeout: 8000,
    });
    const rejoined = a.plugins.muc.waitFor('joined', { filter: (e) => e.room === room, timeout: 8000 });
    a.dropConnection();
    await rejoined;
    assert.deepEqual(a.plugins.muc.rooms(), [room]);
    await left.catch(() => undefined); // the server may notice the old session's end before or after
    const heard = a.plugins.muc.waitFor('message', {
      filter: (m) => m.body === 'welcome back',
      timeout: 5000,
    });
    await owner.plugins.muc.send(room, 'welcome back');
    await heard;
  });
}

function tryBare(j: string): string {
  return j.split('/')[0] ?? j;
}
