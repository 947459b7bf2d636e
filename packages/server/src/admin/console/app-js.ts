/**
 * The web console's script (served as /console/app.js), plain JavaScript for current browsers: no
 * framework, no build step. Every value from the server is written with textContent or as an
 * attribute value through the DOM, never parsed as HTML. Changes send the session's CSRF token in
 * `x-csrf-token` (the cookie itself is HttpOnly: the script never sees it).
 *
 * Kept as a string (String.raw: backslashes as written) without template literals inside.
 * Tests wait on `section[data-page=X][data-state=ready]`, set when a page has been drawn.
 */
export const APP_JS = String.raw`'use strict';
(function () {
  var state = { csrf: '', jid: '', hosts: [], page: '', pages: [''], selected: null };
  var PAGES = ['dashboard', 'users', 'sessions', 'rooms', 's2s', 'components', 'config', 'logs'];

  function $(id) { return document.getElementById(id); }
  function section(page) { return document.querySelector('section[data-page="' + page + '"]'); }

  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function button(label, onClick, attrs) {
    var b = el('button', label, attrs);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  /** Replaces a tbody's rows: one array of cells (strings, numbers or nodes) per row. */
  function fill(tbodyId, rows, empty) {
    var body = $(tbodyId);
    body.replaceChildren();
    if (rows.length === 0) {
      var tr = el('tr');
      var td = el('td', empty || 'none');
      td.colSpan = body.parentElement.querySelectorAll('th').length;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (cells) {
      var tr = el('tr');
      cells.forEach(function (c) {
        var td = el('td');
        if (c instanceof Node) td.appendChild(c);
        else if (typeof c === 'number') { td.textContent = String(c); td.className = 'num'; }
        else td.textContent = c === undefined || c === null ? '' : String(c);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function say(text, isError) {
    var m = $('message');
    m.textContent = text || '';
    m.className = isError ? 'message error' : 'message';
  }

  function when(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function duration(s) {
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min ' + (s % 60) + ' s';
    return s + ' s';
  }

  function SessionEnded(message) { this.message = message; }

  async function api(method, path, body) {
    var init = { method: method, credentials: 'same-origin', headers: {} };
    if (method !== 'GET') {
      init.headers['content-type'] = 'application/json';
      if (state.csrf) init.headers['x-csrf-token'] = state.csrf;
      init.body = JSON.stringify(body || {});
    }
    var res = await fetch('api/' + path, init);
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && path !== 'login' && path !== 'session') {
      showLogin('Your session has ended: log in again.');
      throw new SessionEnded('session ended');
    }
    if (!res.ok) {
      var err = new Error((data && data.error) || ('HTTP ' + res.status));
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== '') q.set(k, params[k]);
    });
    var s = q.toString();
    return s ? '?' + s : '';
  }

  // ---- login ----

  function showLogin(error) {
    state.csrf = '';
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = error || '';
    $('login-password').value = '';
    $('login-jid').focus();
  }

  function showApp(session) {
    state.csrf = session.csrf;
    state.jid = session.jid;
    state.hosts = session.hosts;
    $('whoami').textContent = session.jid;
    var hostSelect = $('users-host');
    hostSelect.replaceChildren();
    session.hosts.forEach(function (h) { hostSelect.appendChild(el('option', h, { value: h })); });
    $('login').hidden = true;
    $('app').hidden = false;
    route();
  }

  $('login-form').addEventListener('submit', async function (ev) {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      var session = await api('POST', 'login', { jid: $('login-jid').value.trim(), password: $('login-password').value });
      $('login-password').value = '';
      showApp(session);
    } catch (e) {
      $('login-error').textContent = e.message;
    }
  });

  $('logout').addEventListener('click', async function () {
    try { await api('POST', 'logout'); } catch (e) { /* the session is gone either way */ }
    showLogin('Logged out.');
  });

  $('refresh').addEventListener('click', function () { load(state.page); });

  // ---- navigation ----

  function route() {
    var page = location.hash.slice(1);
    if (PAGES.indexOf(page) < 0) page = 'dashboard';
    state.page = page;
    PAGES.forEach(function (p) { section(p).hidden = p !== page; });
    document.querySelectorAll('nav a').forEach(function (a) {
      if (a.getAttribute('data-nav') === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    say('');
    load(page);
  }

  window.addEventListener('hashchange', function () { if (!$('app').hidden) route(); });

  async function load(page) {
    var s = section(page);
    s.setAttribute('data-state', 'loading');
    try {
      await LOADERS[page]();
      s.setAttribute('data-state', 'ready');
    } catch (e) {
      if (e instanceof SessionEnded) return;
      s.setAttribute('data-state', 'error');
      say(e.message, true);
    }
  }

  // ---- pages ----

  async function dashboard() {
    var st = await api('GET', 'stats');
    var sum = function (k) { return st.hosts.reduce(function (n, h) { return n + h[k]; }, 0); };
    var values = {
      registered: sum('registered'),
      online: sum('online'),
      sessions: sum('sessions'),
      disabled: sum('disabled'),
      s2sStreams: st.s2sStreams,
      components: st.components,
      uptime: duration(st.uptimeSeconds),
      version: st.version
    };
    Object.keys(values).forEach(function (k) {
      document.querySelector('[data-stat="' + k + '"]').textContent = String(values[k]);
    });
    fill('hosts-rows', st.hosts.map(function (h) {
      return [h.host, h.registered, h.disabled, h.online, h.active, h.sessions];
    }));
  }

  async function users() {
    var after = state.pages[state.pages.length - 1];
    var page = await api('GET', 'users' + query({
      host: $('users-host').value,
      search: $('users-search').value.trim(),
      disabled: $('users-filter').value,
      after: after
    }));
    fill('users-rows', page.users.map(function (u) {
      var status = u.disabled ? el('span', 'disabled' + (u.disabled.reason ? ': ' + u.disabled.reason : ''), { class: 'status-disabled' }) : 'enabled';
      return [u.jid, when(u.createdAt), status, u.sessions.length,
        button('Manage', function () { select(u); }, { 'data-manage': u.jid })];
    }), 'no accounts');
    $('users-next').disabled = !page.more;
    $('users-next').onclick = function () {
      state.pages.push(page.users.length ? page.users[page.users.length - 1].jid : after);
      load('users');
    };
    $('users-first').disabled = state.pages.length <= 1;
    if (state.selected) {
      var again = page.users.filter(function (u) { return u.jid === state.selected.jid; })[0];
      if (again) select(again);
    }
  }

  function select(u) {
    state.selected = u;
    $('user-detail').hidden = false;
    $('detail-jid').textContent = u.jid;
    $('detail-status').textContent = u.disabled
      ? 'Disabled since ' + when(u.disabled.at) + (u.disabled.reason ? ' (' + u.disabled.reason + ')' : '') + '.'
      : 'Enabled; ' + u.sessions.length + ' session(s); created ' + when(u.createdAt) + '.';
    $('user-disable').hidden = !!u.disabled;
    $('user-enable').hidden = !u.disabled;
    $('remove-confirm').value = '';
    $('remove-button').disabled = true;
  }

  function unselect() {
    state.selected = null;
    $('user-detail').hidden = true;
  }

  /** Runs a change, says what it did, redraws the page. */
  async function change(path, body, done) {
    try {
      var out = await api('POST', path, body);
      say(done(out));
    } catch (e) {
      if (e instanceof SessionEnded) return;
      say(e.message, true);
      return;
    }
    await load(state.page);
  }

  $('user-search').addEventListener('submit', function (ev) {
    ev.preventDefault();
    state.pages = [''];
    unselect();
    load('users');
  });
  $('users-first').addEventListener('click', function () { state.pages = ['']; load('users'); });

  $('user-add').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var jid = $('add-jid').value.trim();
    var password = $('add-password').value;
    change('users/add', { jid: jid, password: password }, function (o) {
      $('add-jid').value = '';
      $('add-password').value = '';
      return 'Created ' + o.jid + '.';
    });
  });

  $('user-disable').addEventListener('submit', function (ev) {
    ev.preventDefault();
    change('users/disable', { jid: state.selected.jid, reason: $('disable-reason').value }, function (o) {
      $('disable-reason').value = '';
      return 'Disabled ' + o.jid + '; ' + o.sessions + ' session(s) ended.';
    });
  });

  $('user-enable').addEventListener('submit', function (ev) {
    ev.preventDefault();
    change('users/enable', { jid: state.selected.jid }, function (o) { return 'Enabled ' + o.jid + '.'; });
  });

  $('user-password').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var password = $('new-password').value;
    change('users/password', { jid: state.selected.jid, password: password }, function (o) {
      $('new-password').value = '';
      return 'Password changed for ' + o.jid + '; ' + o.sessions + ' session(s) ended.';
    });
  });

  $('remove-confirm').addEventListener('input', function () {
    $('remove-button').disabled = !state.selected || $('remove-confirm').value.trim() !== state.selected.jid;
  });

  $('user-remove').addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (!state.selected || $('remove-confirm').value.trim() !== state.selected.jid) return;
    var jid = state.selected.jid;
    unselect();
    change('users/remove', { jid: jid }, function (o) {
      return 'Removed ' + o.jid + ' and its data; ' + o.sessions + ' session(s) ended.';
    });
  });

  async function sessions() {
    var out = await api('GET', 'sessions');
    fill('sessions-rows', out.sessions.map(function (s) {
      return [s.jid, s.state, s.transport, s.ip, when(s.since), s.node,
        button('End', function () {
          change('sessions/end', { jid: s.jid }, function (o) { return o.sessions + ' session(s) of ' + o.jid + ' ended.'; });
        }, { 'data-end': s.jid })];
    }), 'no sessions');
  }

  async function rooms() {
    var out = await api('GET', 'rooms');
    fill('rooms-rows', out.rooms.map(function (r) {
      return [r.jid, r.name, r.occupants, r.persistent ? 'yes' : 'no', r.public ? 'yes' : 'no', r.locked ? 'yes' : 'no'];
    }), 'no rooms');
  }

  async function s2s() {
    var out = await api('GET', 's2s');
    $('s2s-enabled').textContent = out.enabled ? 'Federation is on.' : 'Federation is off (s2s.enabled).';
    fill('s2s-rows', out.streams.map(function (s) {
      return [s.direction, s.remoteDomains.join(', '), s.localDomains.join(', '), s.auth,
        s.tls ? (s.tlsVersion || 'yes') : 'no', s.address, when(s.since), s.stanzasIn + ' / ' + s.stanzasOut, s.state];
    }), 'no streams');
  }

  async function components() {
    var out = await api('GET', 'components');
    fill('components-rows', out.components.map(function (c) {
      return [c.domain, c.connected ? 'yes' : 'no', c.node || ''];
    }), 'no components configured');
  }

  async function config() {
    var out = await api('GET', 'config');
    $('config-json').textContent = JSON.stringify(out, null, 2);
  }

  var LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

  async function logs() {
    var out = await api('GET', 'logs');
    if (!out.available) {
      fill('logs-rows', [], 'not available: the server was started with a logger of its caller');
      return;
    }
    fill('logs-rows', out.lines.slice().reverse().map(function (l) {
      var rest = {};
      Object.keys(l).forEach(function (k) {
        if (['level', 'time', 'msg', 'service', 'pid', 'hostname'].indexOf(k) < 0) rest[k] = l[k];
      });
      var level = el('span', LEVELS[l.level] || String(l.level), { class: 'level-' + (LEVELS[l.level] || 'other') });
      return [l.time ? when(new Date(l.time).toISOString()) : '', level, l.msg, Object.keys(rest).length ? JSON.stringify(rest) : ''];
    }), 'no lines yet');
  }

  var LOADERS = {
    dashboard: dashboard, users: users, sessions: sessions, rooms: rooms,
    s2s: s2s, components: components, config: config, logs: logs
  };

  // ---- start: an existing session, else the login form ----
  api('GET', 'session').then(showApp, function () { showLogin(''); });
})();
`;
