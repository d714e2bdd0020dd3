// The inspector page: a key, then the app's channels, one open channel (live tail, history,
// presence, AI Transport session), the app's connections, stats and recorded push notifications.
// State lives in `view`; each panel has a load function that fetches what it shows and redraws
// it whole.

import { AiSession, inputText, runText } from './aitransport.js';
import { actionName, decodeData, formatTime, PRESENCE_ACTIONS, renderData } from './messages.js';
import { RelayClient } from './protocol.js';

const LIVE_LIMIT = 500;
const HISTORY_PAGE = 25;
const AI_HISTORY_PAGES = 20;
const POLL_MS = 3000;
// Presence events come in bursts (a SYNC, a device joining); the member list is read once per burst.
const PRESENCE_COALESCE_MS = 200;
const STORAGE_KEY = 'channel-relay-inspector-key';

const $ = (id) => document.getElementById(id);
// `aiPending` holds live messages while the AI view reads history up to the attach point.
// `admin` is a client with the relay's admin key, when one was given: it lists every app and
// fetches another app's key to switch to it.
const view = {
  client: null,
  admin: null,
  appId: null,
  channel: null,
  unsubscribe: null,
  tab: 'live',
  ai: null,
  aiHistoryRead: false,
  aiPending: null,
  poller: null,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function short(id) {
  return id && id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id || '';
}

// The key: from the page's address (#key= or ?key=, then removed from it), the session's
// storage, or the form.

function initialKey() {
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get('key');
  const fromQuery = new URLSearchParams(window.location.search).get('key');
  const key = fromHash || fromQuery;
  if (key) {
    window.history.replaceState(null, '', window.location.pathname);
    return key;
  }
  return sessionStorage.getItem(STORAGE_KEY);
}

async function start(key, admin = null) {
  stop();
  const client = new RelayClient(key.trim());
  let app;
  try {
    app = (await client.get('/inspect/api/app')).items;
  } catch (error) {
    showKeyError(`The relay refused this key: ${error.message} (${error.code ?? error.statusCode})`);
    return;
  }
  sessionStorage.setItem(STORAGE_KEY, key.trim());
  view.client = client;
  $('key').value = '';
  $('key').placeholder = `using ${app.keyName}`;
  $('forget').hidden = false;
  $('welcome').hidden = true;
  $('workspace').hidden = false;
  renderApp(app);
  showView(null);
  view.appId = app.appId;
  view.admin = admin || (await isAdmin(client) ? client : null);
  loadApps(app.appId);
  client.onState = renderConnection;
  client.connect();
  loadChannels();
  view.poller = setInterval(poll, POLL_MS);
}

function stop() {
  if (view.client) {
    view.client.onState = () => {};
    view.client.close();
  }
  if (view.poller) clearInterval(view.poller);
  view.client = null;
  view.channel = null;
  view.unsubscribe = null;
}

function showKeyError(text) {
  $('welcome').hidden = false;
  $('workspace').hidden = true;
  $('key-error').hidden = false;
  $('key-error').textContent = text;
}

function renderConnection(state, error) {
  const pill = $('connection');
  pill.dataset.state = state;
  const id = view.client?.connectionId;
  pill.textContent = id ? `${state} · ${id}` : state;
  if (error) pill.textContent += ` · ${error.message} (${error.code})`;
}

function renderApp(app) {
  const capability = Object.entries(app.capability)
    .map(([resource, ops]) => `${resource}: ${ops.join(', ')}`)
    .join('\n');
  $('app-details').replaceChildren(
    el('dt', {}, 'appId'),
    el('dd', { id: 'app-id' }, app.appId),
    el('dt', {}, 'key'),
    el('dd', {}, app.keyName),
    el('dt', {}, 'capability'),
    el('dd', {}, el('pre', {}, capability)),
    ...(app.clientId ? [el('dt', {}, 'clientId'), el('dd', {}, app.clientId)] : []),
  );
}

async function isAdmin(client) {
  try {
    await client.get('/admin/apps');
    return true;
  } catch {
    return false;
  }
}

// Every app of the relay, for the admin key only (GET /admin/apps); opening one fetches its
// key with the admin key and starts over with it.
async function loadApps(current) {
  const list = $('apps');
  list.hidden = !view.admin;
  if (!view.admin) return;
  const apps = (await view.admin.get('/admin/apps')).items;
  list.replaceChildren(
    ...apps.map((app) =>
      el(
        'li',
        { class: app.appId === current ? 'current' : '', 'data-app-id': app.appId },
        el('a', { href: '#', onclick: (event) => (event.preventDefault(), switchApp(app.appId)) }, app.appId),
        el('span', { class: 'occupancy' }, ` ${plural(app.keys.length, 'key')} · ${plural(app.channels, 'channel')}${app.admin ? ' · admin' : ''}`),
      ),
    ),
  );
}

async function switchApp(appId) {
  const admin = view.admin;
  const keys = (await admin.get(`/admin/apps/${encodeURIComponent(appId)}/keys`)).items;
  if (keys.length) start(keys[0].key, admin);
}

function poll() {
  if (!view.client) return;
  if (!$('connections-view').hidden) loadConnections();
  if (!$('push-view').hidden) loadPush();
  if (!$('stats-view').hidden) loadStats();
  loadApps(view.appId);
  if (view.channel) loadStatus(view.channel);
  loadChannels();
}

// Channels: GET /channels (Ably's enumeration of active channels), with their occupancy.

async function loadChannels(url = null) {
  const client = view.client;
  const prefix = $('channel-name').value.trim();
  const params = new URLSearchParams({ by: 'value', limit: '100' });
  if (prefix) params.set('prefix', prefix);
  let page;
  try {
    page = await client.get(url || `/channels?${params}`);
  } catch (error) {
    $('channels-note').textContent = `Cannot list channels: ${error.message}`;
    return;
  }
  const rows = page.items.map((item) => (typeof item === 'string' ? { channelId: item } : item));
  const list = $('channels');
  if (!url) list.replaceChildren();
  for (const details of rows) list.append(channelRow(details));
  $('channels-note').textContent = list.children.length ? '' : 'No active channels.';
  const more = $('more-channels');
  more.hidden = !page.next;
  more.onclick = () => loadChannels(page.next);
}

function channelRow(details) {
  const name = details.channelId || details.name;
  const metrics = details.status?.occupancy?.metrics;
  return el(
    'li',
    { class: name === view.channel ? 'current' : '', 'data-channel': name },
    el('a', { href: '#', onclick: (event) => (event.preventDefault(), openChannel(name)) }, name),
    metrics ? el('span', { class: 'occupancy' }, occupancyText(metrics)) : null,
  );
}

function occupancyText(m) {
  return `${m.connections} conn · ${m.publishers} pub · ${m.subscribers} sub · ${m.presenceMembers} present`;
}

async function loadStatus(name) {
  try {
    const status = (await view.client.get(view.client.channelPath(name))).items;
    if (name === view.channel) $('occupancy').textContent = occupancyText(status.status.occupancy.metrics);
  } catch (error) {
    $('occupancy').textContent = error.message;
  }
}

// One open channel: subscribed once, its events feeding the live tail, presence and AI views.

function openChannel(name) {
  if (!name) return;
  if (view.unsubscribe) view.unsubscribe();
  view.channel = name;
  view.ai = new AiSession();
  view.aiPending = null;
  view.aiHistoryRead = false;
  showView('channel-view');
  $('channel-title').textContent = name;
  $('live').replaceChildren();
  $('live-note').textContent = 'Attaching…';
  $('history').replaceChildren();
  for (const row of $('channels').children) row.classList.toggle('current', row.dataset.channel === name);
  view.unsubscribe = view.client.subscribe(name, (event) => onChannelEvent(name, event));
  loadStatus(name);
  selectTab(view.tab);
}

function onChannelEvent(name, event) {
  if (name !== view.channel) return;
  if (event.type === 'attached') {
    $('live-note').textContent = 'Attached; new messages appear at the top.';
    // After a drop the client re-attaches from where it was and the relay replays the gap, so
    // history is read once per opening.
    if (!view.aiHistoryRead) {
      view.aiHistoryRead = true;
      view.aiPending = [];
      loadAiHistory(name, event.attachSerial);
    }
  } else if (event.type === 'message') {
    addLive(event.message);
    if (view.aiPending) view.aiPending.push(event.message);
    else if (view.ai.apply(event.message)) renderAi();
  } else if (event.type === 'presence') {
    if (view.tab === 'presence') schedulePresence();
  } else if (event.type === 'error') {
    $('live-note').textContent = `Channel error: ${event.error.message} (${event.error.code})`;
  }
}

function selectTab(tab) {
  view.tab = tab;
  for (const button of document.querySelectorAll('.tabs [role=tab]')) {
    button.setAttribute('aria-selected', String(button.dataset.tab === tab));
  }
  for (const section of document.querySelectorAll('.tab')) section.hidden = section.id !== `tab-${tab}`;
  if (tab === 'history' && !$('history').children.length) loadHistory();
  if (tab === 'presence') loadPresence();
  if (tab === 'ai') renderAi();
}

// Messages, as rows of the live tail and of history.

function messageRow(message) {
  const action = actionName(message.action);
  const decoded = decodeData(message.data, message.encoding);
  const version = message.version?.serial && message.version.serial !== message.serial ? message.version : null;
  const extras = message.extras ? el('details', {}, el('summary', {}, 'extras'), renderData({ kind: 'json', value: message.extras })) : null;
  return el(
    'li',
    { class: `message action-${action}`, 'data-action': action, 'data-name': message.name ?? '' },
    el(
      'div',
      { class: 'meta' },
      el('time', {}, formatTime(message.timestamp)),
      el('span', { class: `badge badge-${action}` }, action),
      el('strong', { class: 'name' }, message.name ?? '(no name)'),
      message.clientId ? el('span', { class: 'client', title: 'clientId' }, message.clientId) : null,
      message.connectionId ? el('span', { class: 'conn', title: `connectionId ${message.connectionId}` }, short(message.connectionId)) : null,
      message.serial ? el('span', { class: 'serial', title: 'serial' }, message.serial) : null,
      version ? el('span', { class: 'version', title: 'version' }, `v ${version.serial}${version.clientId ? ` by ${version.clientId}` : ''}`) : null,
      aiTag(message.extras?.ai),
    ),
    renderData(decoded),
    extras,
  );
}

/** What an AI Transport message is, from its headers: the codec kind and the stream status. */
function aiTag(ai) {
  if (!ai) return null;
  const kind = ai.codec?.kind;
  const status = ai.transport?.status;
  const text = ['ai', kind, status].filter(Boolean).join(' · ');
  return el('span', { class: 'badge badge-ai', title: 'AI Transport headers (see extras)' }, text);
}

function addLive(message) {
  const list = $('live');
  list.prepend(messageRow(message));
  while (list.children.length > LIVE_LIMIT) list.lastChild.remove();
  $('live-note').textContent = `${plural(list.children.length, 'message')} since attaching (newest first).`;
}

async function loadHistory(url = null) {
  const name = view.channel;
  const client = view.client;
  const first = client.channelPath(name, `/messages?limit=${HISTORY_PAGE}&direction=backwards`);
  let page;
  try {
    page = await client.get(url || first);
  } catch (error) {
    $('history-note').textContent = `Cannot read history: ${error.message}`;
    return;
  }
  if (name !== view.channel) return;
  for (const message of page.items) $('history').append(messageRow(message));
  $('history-note').textContent = `${plural($('history').children.length, 'message')}, newest first.`;
  const older = $('older');
  older.hidden = !page.next;
  older.onclick = () => loadHistory(page.next);
}

let presenceQueued = false;
function schedulePresence() {
  if (presenceQueued) return;
  presenceQueued = true;
  setTimeout(() => {
    presenceQueued = false;
    loadPresence();
  }, PRESENCE_COALESCE_MS);
}

async function loadPresence() {
  const name = view.channel;
  let page;
  try {
    page = await view.client.get(view.client.channelPath(name, '/presence?limit=1000'));
  } catch (error) {
    $('presence-note').textContent = `Cannot read presence: ${error.message}`;
    return;
  }
  if (name !== view.channel) return;
  const members = page.items;
  const clients = new Set(members.map((m) => m.clientId));
  $('presence').replaceChildren(
    ...members.map((member) =>
      el(
        'tr',
        { 'data-client-id': member.clientId, 'data-connection-id': member.connectionId },
        el('td', {}, member.clientId),
        el('td', { class: 'mono' }, member.connectionId),
        el('td', {}, renderData(decodeData(member.data, member.encoding))),
        el('td', {}, `${PRESENCE_ACTIONS[member.action] ?? member.action} ${formatTime(member.timestamp)}`),
      ),
    ),
  );
  const devices = new Set(members.map((m) => m.connectionId)).size;
  $('presence-note').textContent = `${plural(members.length, 'member')}: ${plural(clients.size, 'client')} on ${plural(devices, 'connection')} (devices).`;
}

// The AI Transport view: the session's history up to the attach point, then live messages.

async function loadAiHistory(name, attachSerial) {
  const client = view.client;
  const params = new URLSearchParams({ limit: '100', direction: 'backwards' });
  if (attachSerial) params.set('from_serial', attachSerial);
  let url = client.channelPath(name, `/messages?${params}`);
  const older = [];
  for (let pages = 0; url && pages < AI_HISTORY_PAGES; pages += 1) {
    let page;
    try {
      page = await client.get(url);
    } catch {
      break;
    }
    older.push(...page.items);
    url = page.next;
  }
  if (name !== view.channel) return;
  // History is newest first; the session is built oldest first, then the live messages.
  view.ai = new AiSession();
  for (const message of older.reverse()) view.ai.apply(message);
  for (const message of view.aiPending || []) view.ai.apply(message);
  view.aiPending = null;
  renderAi();
}

function renderAi() {
  if (view.tab !== 'ai' || !view.ai) return;
  const ai = view.ai;
  const turns = ai.turns();
  const branches = ai.branches();
  $('ai-summary').textContent = turns.length
    ? [plural(turns.length, 'turn'), plural(ai.runs.size, 'run'), plural(branches.edits, 'edit'), plural(branches.regenerations, 'regeneration'), plural(ai.cancels.length, 'cancel')].join(', ') + '.'
    : 'No AI Transport messages on this channel yet.';
  $('turns').replaceChildren(...turns.map((turn) => turnRow(ai, turn)));
  $('cancels').replaceChildren(
    ...(ai.cancels.length ? [] : [el('li', { class: 'note' }, 'None.')]),
    ...ai.cancels.map((cancel) =>
      el(
        'li',
        {},
        el('time', {}, formatTime(cancel.timestamp)),
        ` ${cancel.clientId ?? 'someone'} cancelled `,
        cancel.runId ? el('span', { class: 'mono' }, `run ${short(cancel.runId)}`) : `the run of input ${short(cancel.inputId)}`,
      ),
    ),
  );
}

function turnRow(ai, turn) {
  const input = turn.input;
  let branch = null;
  if (input?.forkOf) branch = `edit of “${ai.describe(input.forkOf)}”`;
  else if (input?.regenerates) branch = `regeneration of “${ai.describe(input.regenerates)}”`;
  const who = input ? input.clientId ?? 'unknown' : null;
  return el(
    'li',
    { class: `turn${branch ? ' branch' : ''}` },
    input
      ? el(
          'div',
          { class: 'input' },
          el('span', { class: 'who' }, who),
          branch ? el('span', { class: 'badge badge-branch' }, branch) : null,
          el('div', { class: 'text' }, input.kind === 'regenerate' ? '(regenerate)' : inputText(input)),
        )
      : null,
    ...turn.runs.map((run) =>
      el(
        'div',
        { class: 'run', 'data-run-id': run.id, 'data-state': run.state },
        el(
          'div',
          { class: 'run-head' },
          el('span', { class: `badge state-${run.state}` }, run.state),
          el('span', { class: 'mono', title: run.id }, `run ${short(run.id)}`),
          el('span', {}, ` owner ${run.owner ?? 'unknown'}`),
          ...ai.cancels
            .filter((c) => c.runId === run.id || (!c.runId && c.inputId === run.inputId))
            .map((c) => el('span', { class: 'cancelled-by' }, `cancel sent by ${c.clientId ?? 'unknown'}`)),
        ),
        ...[...run.outputs.values()]
          .filter((part) => part.kind !== 'text')
          .map((part) => el('div', { class: 'part' }, el('span', { class: 'badge' }, part.kind), ` ${part.text}`)),
        el('div', { class: 'text answer' }, runText(run)),
        run.error ? el('div', { class: 'error' }, run.error) : null,
      ),
    ),
  );
}

// Connections of the app (an inspector route: Ably's API has no such list).

async function loadConnections() {
  let page;
  try {
    page = await view.client.get('/inspect/api/connections');
  } catch (error) {
    $('connections-note').textContent = `Cannot list connections: ${error.message}`;
    return;
  }
  const own = view.client.connectionId;
  $('connections').replaceChildren(
    ...page.items.map((c) =>
      el(
        'tr',
        { 'data-connection-id': c.connectionId },
        el('td', { class: 'mono' }, c.connectionId, c.connectionId === own ? el('span', { class: 'badge' }, 'this inspector') : null),
        el('td', {}, c.clientId ?? '(anonymous)'),
        el('td', {}, c.state),
        el('td', { class: 'mono' }, `${c.keyName} (${c.auth})`),
        el('td', {}, c.format),
        el('td', {}, ...c.channels.map((ch) => el('div', {}, el('a', { href: '#', onclick: (e) => (e.preventDefault(), openChannel(ch.name)) }, ch.name), ` ${ch.modes.join(', ')}`))),
      ),
    ),
  );
  $('connections-note').textContent = `${plural(page.items.length, 'connection')}.`;
}

// Push notifications the relay recorded (GET /push/notifications, push-admin).

async function loadPush() {
  const items = [];
  let url = '/push/notifications?limit=1000';
  try {
    while (url) {
      const page = await view.client.get(url);
      items.push(...page.items);
      url = page.next;
    }
  } catch (error) {
    $('push-note').textContent = `Cannot read push notifications: ${error.message}`;
    return;
  }
  $('push').replaceChildren(
    ...items.reverse().map((n) =>
      el(
        'tr',
        { 'data-device-id': n.deviceId },
        el('td', {}, formatTime(n.timestamp)),
        el('td', { class: 'mono' }, n.deviceId),
        el('td', {}, n.clientId ?? ''),
        el('td', { class: 'mono' }, n.channel ?? '(direct)'),
        el('td', {}, n.recipient?.transportType ?? ''),
        el('td', {}, renderData({ kind: 'json', value: n.payload?.notification ?? {} })),
        el('td', {}, n.payload?.data ? renderData({ kind: 'json', value: n.payload.data }) : ''),
      ),
    ),
  );
  $('push-note').textContent = `${plural(items.length, 'notification')}.`;
}

// The app's stats by minute (GET /stats, needs the stats capability).

const STATS_COLUMNS = [
  'messages.inbound.all.messages.count',
  'messages.outbound.all.messages.count',
  'messages.persisted.messages.count',
  'messages.inbound.all.messages.data',
  'connections.all.peak',
  'connections.all.opened',
  'channels.peak',
];

async function loadStats() {
  let page;
  try {
    page = await view.client.get('/stats?unit=minute&limit=60');
  } catch (error) {
    $('stats-note').textContent = `Cannot read stats: ${error.message}`;
    return;
  }
  $('stats').replaceChildren(
    ...page.items.map((interval) =>
      el(
        'tr',
        { 'data-interval': interval.intervalId },
        el('td', { class: 'mono' }, interval.intervalId + (interval.inProgress ? ' (so far)' : '')),
        ...STATS_COLUMNS.map((name) => el('td', { 'data-entry': name }, String(interval.entries[name] ?? 0))),
      ),
    ),
  );
  $('stats-note').textContent = page.items.length ? '' : 'Nothing counted in the last hour.';
}

function showView(id) {
  for (const other of ['channel-view', 'connections-view', 'stats-view', 'push-view']) $(other).hidden = other !== id;
}

function showConnections() {
  showView('connections-view');
  loadConnections();
}

function showStats() {
  showView('stats-view');
  loadStats();
}

function showPush() {
  showView('push-view');
  loadPush();
}

document.addEventListener('DOMContentLoaded', () => {
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if ($('key').value.trim()) start($('key').value);
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(STORAGE_KEY);
    stop();
    window.location.reload();
  });
  $('open-form').addEventListener('submit', (event) => {
    event.preventDefault();
    openChannel($('channel-name').value.trim());
    $('channel-name').value = '';
    loadChannels();
  });
  $('channel-name').addEventListener('input', () => loadChannels());
  $('refresh-channels').addEventListener('click', () => loadChannels());
  $('show-connections').addEventListener('click', (event) => (event.preventDefault(), showConnections()));
  $('show-push').addEventListener('click', (event) => (event.preventDefault(), showPush()));
  $('show-stats').addEventListener('click', (event) => (event.preventDefault(), showStats()));
  for (const button of document.querySelectorAll('.tabs [role=tab]')) {
    button.addEventListener('click', () => selectTab(button.dataset.tab));
  }
  const key = initialKey();
  if (key) start(key);
});
