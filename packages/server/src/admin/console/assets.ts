/**
 * The web console's static files, as strings so that `tsc -b` puts them in dist with the code (no
 * asset copying, no bundler). The page holds no data: app.js (app-js.ts) asks `/console/api/…`
 * and writes every value with textContent. Paths are relative, so a reverse proxy may serve the
 * console under a prefix of its own (as long as it ends in /console/: the cookie's path).
 */

const NAV = [
  ['dashboard', 'Dashboard'],
  ['users', 'Users'],
  ['sessions', 'Sessions'],
  ['rooms', 'Rooms'],
  ['s2s', 'Server-to-server'],
  ['components', 'Components'],
  ['config', 'Configuration'],
  ['logs', 'Logs'],
] as const;

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Natter console</title>
<link rel="icon" href="favicon.svg">
<link rel="stylesheet" href="console.css">
<script src="app.js" defer></script>
</head>
<body>
<section id="login" class="login" hidden>
  <h1>Natter console</h1>
  <form id="login-form" autocomplete="on">
    <label>Administrator (JID) <input id="login-jid" name="jid" autocomplete="username" required></label>
    <label>Password <input id="login-password" name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Log in</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>
<div id="app" hidden>
  <header>
    <span class="brand">Natter</span>
    <nav>${NAV.map(([id, label]) => `<a href="#${id}" data-nav="${id}">${label}</a>`).join('')}</nav>
    <span class="who"><span id="whoami"></span> <button id="refresh" type="button">Refresh</button> <button id="logout" type="button">Log out</button></span>
  </header>
  <p id="message" class="message" role="status"></p>
  <main>
    <section data-page="dashboard" hidden>
      <h2>Dashboard</h2>
      <div class="cards">
        <div class="card"><span class="label">Accounts</span><span class="value" data-stat="registered"></span></div>
        <div class="card"><span class="label">Online accounts</span><span class="value" data-stat="online"></span></div>
        <div class="card"><span class="label">Sessions</span><span class="value" data-stat="sessions"></span></div>
        <div class="card"><span class="label">Disabled accounts</span><span class="value" data-stat="disabled"></span></div>
        <div class="card"><span class="label">Server-to-server streams</span><span class="value" data-stat="s2sStreams"></span></div>
        <div class="card"><span class="label">Components</span><span class="value" data-stat="components"></span></div>
        <div class="card"><span class="label">Uptime</span><span class="value" data-stat="uptime"></span></div>
        <div class="card"><span class="label">Version</span><span class="value" data-stat="version"></span></div>
      </div>
      <h3>Hosts</h3>
      <table><thead><tr><th>Host</th><th>Accounts</th><th>Disabled</th><th>Online</th><th>Available</th><th>Sessions</th></tr></thead><tbody id="hosts-rows"></tbody></table>
    </section>
    <section data-page="users" hidden>
      <h2>Users</h2>
      <form id="user-add" class="inline">
        <input id="add-jid" placeholder="user@host" autocomplete="off" required>
        <input id="add-password" type="password" placeholder="password" autocomplete="new-password" required>
        <button type="submit">Add user</button>
      </form>
      <form id="user-search" class="inline">
        <select id="users-host" aria-label="Host"></select>
        <input id="users-search" type="search" placeholder="search usernames" aria-label="Search">
        <select id="users-filter" aria-label="Show"><option value="">all</option><option value="false">enabled</option><option value="true">disabled</option></select>
        <button type="submit">Search</button>
      </form>
      <table><thead><tr><th>Account</th><th>Created</th><th>Status</th><th>Sessions</th><th></th></tr></thead><tbody id="users-rows"></tbody></table>
      <p class="pager"><button id="users-first" type="button">First page</button> <button id="users-next" type="button">Next page</button></p>
      <div id="user-detail" class="detail" hidden>
        <h3 id="detail-jid"></h3>
        <p id="detail-status"></p>
        <form id="user-disable" class="inline"><input id="disable-reason" placeholder="reason" maxlength="1024"><button type="submit">Disable</button></form>
        <form id="user-enable" class="inline"><button type="submit">Enable</button></form>
        <form id="user-password" class="inline"><input id="new-password" type="password" placeholder="new password" autocomplete="new-password" required><button type="submit">Change password</button></form>
        <form id="user-remove" class="inline danger"><input id="remove-confirm" placeholder="type the JID to confirm" autocomplete="off"><button id="remove-button" type="submit" disabled>Remove account and data</button></form>
      </div>
    </section>
    <section data-page="sessions" hidden>
      <h2>Sessions</h2>
      <table><thead><tr><th>Session</th><th>State</th><th>Transport</th><th>Address</th><th>Since</th><th>Node</th><th></th></tr></thead><tbody id="sessions-rows"></tbody></table>
    </section>
    <section data-page="rooms" hidden>
      <h2>Rooms</h2>
      <table><thead><tr><th>Room</th><th>Name</th><th>Occupants</th><th>Persistent</th><th>Public</th><th>Locked</th></tr></thead><tbody id="rooms-rows"></tbody></table>
    </section>
    <section data-page="s2s" hidden>
      <h2>Server-to-server streams</h2>
      <p id="s2s-enabled"></p>
      <table><thead><tr><th>Direction</th><th>Remote</th><th>Local</th><th>Auth</th><th>TLS</th><th>Address</th><th>Since</th><th>In / out</th><th>State</th></tr></thead><tbody id="s2s-rows"></tbody></table>
    </section>
    <section data-page="components" hidden>
      <h2>Components</h2>
      <table><thead><tr><th>Domain</th><th>Connected</th><th>Node</th></tr></thead><tbody id="components-rows"></tbody></table>
    </section>
    <section data-page="config" hidden>
      <h2>Configuration</h2>
      <p>The running configuration; tokens, passwords, secrets and URL passwords are shown as (redacted).</p>
      <pre id="config-json"></pre>
    </section>
    <section data-page="logs" hidden>
      <h2>Recent logs</h2>
      <p>The last lines at info and above, newest first, kept in memory by this process.</p>
      <table><thead><tr><th>Time</th><th>Level</th><th>Message</th><th>Fields</th></tr></thead><tbody id="logs-rows"></tbody></table>
    </section>
  </main>
</div>
</body>
</html>
`;

export const CONSOLE_CSS = `:root { color-scheme: light; --fg: #1d232a; --muted: #5c6670; --line: #d8dde3; --bg: #f5f7f9; --accent: #2459a8; --bad: #b3261e; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1.5em; padding: .6em 1.2em; background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; font-size: 1.15em; color: var(--accent); }
nav { display: flex; gap: .9em; flex-wrap: wrap; flex: 1; }
nav a { color: var(--fg); text-decoration: none; padding: .2em 0; border-bottom: 2px solid transparent; }
nav a[aria-current="page"] { border-bottom-color: var(--accent); color: var(--accent); }
.who { color: var(--muted); white-space: nowrap; }
main { padding: 1em 1.2em 2em; }
h2 { margin: .2em 0 .6em; }
h3 { margin: 1.2em 0 .4em; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(12em, 1fr)); gap: .8em; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7em .9em; display: flex; flex-direction: column; }
.card .label { color: var(--muted); font-size: .9em; }
.card .value { font-size: 1.6em; font-weight: 600; font-variant-numeric: tabular-nums; }
form.inline { display: flex; gap: .5em; margin: .5em 0; flex-wrap: wrap; align-items: center; }
input, select, button { font: inherit; padding: .3em .5em; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
button { cursor: pointer; background: #e9eef5; }
button:disabled { cursor: default; opacity: .5; }
.danger button { color: var(--bad); }
.detail { margin-top: 1em; padding: .5em 1em 1em; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.message { margin: .6em 1.2em 0; min-height: 1.4em; color: var(--accent); }
.message.error, .error { color: var(--bad); }
.status-disabled { color: var(--bad); font-weight: 600; }
.login { max-width: 24em; margin: 12vh auto; background: #fff; padding: 1.5em 2em; border: 1px solid var(--line); border-radius: 8px; }
.login label { display: flex; flex-direction: column; margin: .7em 0; }
pre { background: #fff; border: 1px solid var(--line); padding: 1em; overflow: auto; }
.level-warn { color: #8a5a00; } .level-error, .level-fatal { color: var(--bad); font-weight: 600; }
`;

/** A speech bubble, so that the browser does not ask for /favicon.ico (outside the console). */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path fill="#2459a8" d="M4 6h24a2 2 0 0 1 2 2v13a2 2 0 0 1-2 2H13l-7 6v-6H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2z"/></svg>`;

export { APP_JS } from './app-js.js';
