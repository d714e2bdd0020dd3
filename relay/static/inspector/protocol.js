// A small Ably client for the inspector: the REST API with Basic auth, and the realtime
// protocol in its JSON form over one WebSocket. Only what a read-only observer needs:
// connect, attach (subscribe and presence-subscribe modes), detach, and the frames that follow.
// Like an SDK it carries on after a drop: it reconnects with `resume` and re-attaches each
// channel from the last channelSerial it saw, so the relay replays what was missed (from its
// durable log, across a relay restart too). A socket silent for longer than the relay's
// maxIdleInterval allows is taken for dead.

const ACTION = {
  HEARTBEAT: 0,
  CONNECTED: 4,
  DISCONNECTED: 6,
  CLOSED: 8,
  ERROR: 9,
  ATTACH: 10,
  ATTACHED: 11,
  DETACH: 12,
  DETACHED: 13,
  PRESENCE: 14,
  MESSAGE: 15,
  SYNC: 16,
};
// Attach modes: the inspector listens, it never publishes or enters.
const SUBSCRIBE = 1 << 18;
const PRESENCE_SUBSCRIBE = 1 << 19;
const RECONNECT_MS = 2000;
// Silence beyond maxIdleInterval that still counts as alive (ably-js allows its realtimeRequestTimeout).
const IDLE_GRACE_MS = 10000;

export class AblyError extends Error {
  constructor(error, status) {
    super(error?.message || `HTTP ${status}`);
    this.code = error?.code ?? null;
    this.statusCode = error?.statusCode ?? status ?? null;
  }
}

export class RelayClient {
  constructor(key, origin = window.location.origin) {
    this.key = key;
    this.origin = origin;
    this.auth = 'Basic ' + btoa(key);
    this.connectionId = null;
    this.state = 'initialized';
    this.onState = () => {};
    this.channels = new Map(); // name -> {listeners: Set, attachSerial, serial, attached}
    this.socket = null;
    this.closed = false;
    this.connectionKey = null;
    this.maxIdleInterval = null;
    this.lastFrame = 0;
    this.idleCheck = null;
  }

  // REST

  /** GET `path` (absolute, or relative to `base`); resolves {items, next} with next a URL or null. */
  async get(path, base = this.origin + '/') {
    const url = new URL(path, base);
    const response = await fetch(url, {
      headers: { Authorization: this.auth, Accept: 'application/json' },
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new AblyError(body?.error, response.status);
    return { items: body, next: nextLink(response.headers.get('Link'), url) };
  }

  channelPath(name, suffix = '') {
    return `/channels/${encodeURIComponent(name)}${suffix}`;
  }

  // Realtime

  connect() {
    const scheme = this.origin.startsWith('https') ? 'wss' : 'ws';
    const host = this.origin.replace(/^https?:\/\//, '');
    const params = new URLSearchParams({ key: this.key, format: 'json', heartbeats: 'true', v: '5' });
    if (this.connectionKey) params.set('resume', this.connectionKey);
    const socket = new WebSocket(`${scheme}://${host}/?${params}`);
    this.socket = socket;
    this.setState('connecting');
    socket.onmessage = (event) => {
      this.lastFrame = Date.now();
      this.receive(JSON.parse(event.data));
    };
    socket.onclose = () => this.lost(socket);
  }

  /** The socket is gone (closed, or silent too long): reconnect unless closed on purpose. */
  lost(socket) {
    if (this.socket !== socket) return;
    this.socket = null;
    clearInterval(this.idleCheck);
    this.connectionId = null;
    for (const channel of this.channels.values()) channel.attached = false;
    if (this.closed) return this.setState('closed');
    this.setState('disconnected');
    setTimeout(() => !this.closed && this.connect(), RECONNECT_MS);
  }

  checkIdle() {
    if (this.socket && Date.now() - this.lastFrame > this.maxIdleInterval + IDLE_GRACE_MS) {
      const socket = this.socket;
      this.lost(socket);
      socket.close();
    }
  }

  close() {
    this.closed = true;
    clearInterval(this.idleCheck);
    if (this.socket) this.socket.close();
  }

  setState(state, error = null) {
    this.state = state;
    this.onState(state, error);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  /**
   * Listen to `name`: `listener(event)` gets {type: 'attached'|'message'|'presence'|'error'|
   * 'detached', ...}. Returns a function that stops listening (and detaches the last one).
   */
  subscribe(name, listener) {
    let channel = this.channels.get(name);
    if (!channel) {
      channel = { listeners: new Set(), attachSerial: null, serial: null, attached: false };
      this.channels.set(name, channel);
    }
    channel.listeners.add(listener);
    if (channel.attached) listener({ type: 'attached', attachSerial: channel.attachSerial, resumed: true });
    else if (this.connectionId) this.attach(name);
    return () => {
      channel.listeners.delete(listener);
      if (channel.listeners.size === 0) {
        this.channels.delete(name);
        this.send({ action: ACTION.DETACH, channel: name });
      }
    };
  }

  attach(name) {
    const frame = { action: ACTION.ATTACH, channel: name, flags: SUBSCRIBE | PRESENCE_SUBSCRIBE };
    const serial = this.channels.get(name)?.serial;
    if (serial) frame.channelSerial = serial;
    this.send(frame);
  }

  emit(name, event) {
    const channel = this.channels.get(name);
    if (channel) for (const listener of channel.listeners) listener(event);
  }

  receive(frame) {
    switch (frame.action) {
      case ACTION.CONNECTED: {
        const details = frame.connectionDetails || {};
        this.connectionId = frame.connectionId;
        this.connectionKey = details.connectionKey || null;
        this.maxIdleInterval = details.maxIdleInterval || 15000;
        clearInterval(this.idleCheck);
        this.idleCheck = setInterval(() => this.checkIdle(), this.maxIdleInterval / 2);
        this.setState('connected');
        for (const name of this.channels.keys()) this.attach(name);
        break;
      }
      case ACTION.ERROR:
        if (frame.channel) this.emit(frame.channel, { type: 'error', error: frame.error });
        else this.setState('failed', frame.error);
        break;
      case ACTION.DISCONNECTED:
        this.socket.close();
        break;
      case ACTION.ATTACHED: {
        const channel = this.channels.get(frame.channel);
        if (!channel || channel.attached) break;
        channel.attached = true;
        channel.attachSerial = frame.channelSerial ?? null;
        channel.serial = frame.channelSerial ?? channel.serial;
        this.emit(frame.channel, { type: 'attached', attachSerial: channel.attachSerial });
        break;
      }
      case ACTION.DETACHED:
        if (frame.error) this.emit(frame.channel, { type: 'error', error: frame.error });
        break;
      case ACTION.MESSAGE:
        this.advance(frame);
        for (const message of inherit(frame, frame.messages)) this.emit(frame.channel, { type: 'message', message });
        break;
      case ACTION.PRESENCE:
        this.advance(frame);
        for (const member of inherit(frame, frame.presence)) this.emit(frame.channel, { type: 'presence', member });
        break;
      case ACTION.SYNC:
        for (const member of inherit(frame, frame.presence)) this.emit(frame.channel, { type: 'presence', member });
        break;
      default:
        break;
    }
  }

  /** Remember how far a channel has been received (a SYNC's channelSerial is a cursor, not this). */
  advance(frame) {
    const channel = this.channels.get(frame.channel);
    if (channel && frame.channelSerial) channel.serial = frame.channelSerial;
  }
}

/** Messages of a ProtocolMessage with the fields they leave to it (id, connectionId, timestamp). */
function inherit(frame, items = []) {
  return items.map((item, index) => ({
    ...item,
    id: item.id ?? (frame.id ? `${frame.id}:${index}` : undefined),
    connectionId: item.connectionId ?? frame.connectionId,
    timestamp: item.timestamp ?? frame.timestamp,
  }));
}

/** The URL of a Link header's rel="next", resolved against the request's URL (Ably sends ./...). */
export function nextLink(header, requestUrl) {
  if (!header) return null;
  for (const part of header.split(',')) {
    const match = part.match(/<([^>]*)>\s*;\s*rel="?next"?/);
    if (match) return new URL(match[1], requestUrl).toString();
  }
  return null;
}
