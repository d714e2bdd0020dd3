// The one place interop scripts learn where the relay is and how to report back to pytest.
//
// Environment (set by tests/interop/conftest.py):
//   RELAY_PORT        port of the relay under test (required)
//   RELAY_KEY         API key "APPID.KEYID:SECRET" (required)
//   RELAY_FORMAT      "msgpack" (node default, useBinaryProtocol true) or "json"
//   RELAY_ARGS        JSON object with per-test arguments (channel names, counts, ...)
//   RELAY_TIMEOUT_MS  whole-script deadline (default 20000)
//   RELAY_LOG_LEVEL   ably-js logLevel, 0-4 (default 1: errors), written to stderr
//
// A script calls run(async () => result). The result is printed on stdout as one line
// "RESULT <json>" and the process exits 0; a thrown error or the deadline prints
// "RESULT {"failure": ...}" and exits 1, so pytest shows why.

import Ably from 'ably';

export { Ably };

const RESULT_PREFIX = 'RESULT ';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this script through pytest (tests/interop)`);
  return value;
}

export const port = Number(required('RELAY_PORT'));
export const key = required('RELAY_KEY');
export const format = process.env.RELAY_FORMAT || 'msgpack';
export const args = JSON.parse(process.env.RELAY_ARGS || '{}');
const timeoutMs = Number(process.env.RELAY_TIMEOUT_MS || 20000);
const logLevel = Number(process.env.RELAY_LOG_LEVEL || 1);

if (format !== 'msgpack' && format !== 'json') throw new Error(`RELAY_FORMAT must be msgpack or json, not ${format}`);

/**
 * Client options that reach the local relay and nothing else.
 *
 * With `endpoint: 'localhost'` and an explicit `port`, ably-js derives no fallback hosts
 * (src/common/lib/util/defaults.ts normaliseOptions / getEndpointFallbackHosts). The HTTP
 * connectivity check is turned off by disableConnectivityCheck (platform/nodejs/lib/util/http.ts),
 * and the websocket connectivity check, run when a connect attempt is slower than
 * webSocketSlowTimeout (connectionmanager.ts checkWsConnectivity), is pointed at the relay itself.
 */
export function clientOptions(overrides = {}) {
  const fmt = overrides.format || format;
  const options = {
    key,
    endpoint: 'localhost',
    port,
    tls: false,
    useBinaryProtocol: fmt === 'msgpack',
    transports: ['web_socket'],
    fallbackHosts: [],
    disableConnectivityCheck: true,
    wsConnectivityCheckUrl: `ws://localhost:${port}/`,
    connectivityCheckUrl: `http://localhost:${port}/time`,
    logLevel,
    logHandler: (msg) => process.stderr.write(`[ably-js] ${msg}\n`),
    ...overrides,
  };
  delete options.format;
  return options;
}

const clients = [];

/** A Realtime client (tracked so run() closes it before exiting). */
export function realtime(overrides = {}) {
  const client = new Ably.Realtime(clientOptions(overrides));
  clients.push(client);
  return client;
}

export function rest(overrides = {}) {
  return new Ably.Rest(clientOptions(overrides));
}

/** Resolve once `emitter` emits `event`; reject after `ms` with a message naming what was awaited. */
export function once(emitter, event, ms = timeoutMs, what = event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    emitter.once(event, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Resolve when the connection is connected; reject with its error if it fails first. */
export function connected(client) {
  const connection = client.connection;
  if (connection.state === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onChange = (change) => {
      if (change.current === 'connected') {
        connection.off(onChange);
        resolve();
      } else if (change.current === 'failed' || change.current === 'closed' || change.current === 'suspended') {
        connection.off(onChange);
        reject(change.reason || new Error(`connection ${change.current}`));
      }
    };
    connection.on(onChange);
  });
}

/**
 * Subscribe to `channel` and resolve with the first `count` messages received (in order).
 * Returns {done: Promise<Message[]>, received: Message[]}; the subscription is live once
 * the returned `attached` promise resolves.
 */
export function collect(channel, count, name = undefined) {
  const received = [];
  let resolveDone;
  const done = new Promise((resolve) => {
    resolveDone = resolve;
  });
  const listener = (message) => {
    received.push(message);
    if (received.length === count) resolveDone(received);
  };
  const attached = name === undefined ? channel.subscribe(listener) : channel.subscribe(name, listener);
  return { attached, done: withTimeout(done, `${count} messages on ${channel.name}`), received };
}

/**
 * Subscribe to `channel` until a message named 'end' arrives (a stream's end marker: anything
 * delivered twice or late would arrive before it). Returns {received, ended}: `received` holds
 * {name, serial, id} of each message before the marker, and `ended` resolves at the marker;
 * `onMessage(received)` is called after each. Resolves once the subscription is attached.
 */
export async function untilEnd(channel, onMessage = () => {}) {
  const received = [];
  let resolveEnd;
  const ended = new Promise((resolve) => {
    resolveEnd = resolve;
  });
  await channel.subscribe((message) => {
    if (message.name === 'end') {
      resolveEnd();
      return;
    }
    received.push({ name: message.name, serial: message.serial, id: message.id });
    onMessage(received);
  });
  return { received, ended };
}

export function withTimeout(promise, what, ms = timeoutMs) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The fields of an ErrorInfo (or any error) that tests compare. */
export function errorInfo(err) {
  if (!err) return null;
  return {
    code: err.code ?? null,
    statusCode: err.statusCode ?? null,
    message: String(err.message ?? err),
  };
}

/** Await `promise`, expecting it to reject; resolve with the ErrorInfo, or {resolved: value}. */
export async function rejection(promise) {
  try {
    const value = await promise;
    return { resolved: describe(value) };
  } catch (err) {
    return errorInfo(err);
  }
}

/** A JSON-safe description of message data that keeps its type (Buffer, string, object). */
export function describe(data) {
  if (Buffer.isBuffer(data)) return { type: 'buffer', base64: data.toString('base64') };
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return { type: 'binary', ctor: data.constructor.name, base64: Buffer.from(data).toString('base64') };
  }
  if (typeof data === 'string') return { type: 'string', value: data };
  if (data === undefined) return { type: 'undefined' };
  if (data === null) return { type: 'null' };
  return { type: typeof data === 'object' ? (Array.isArray(data) ? 'array' : 'object') : typeof data, value: data };
}

/** The fields of a received or historical Message that tests compare. */
export function messageFields(message) {
  return {
    id: message.id ?? null,
    name: message.name ?? null,
    data: describe(message.data),
    encoding: message.encoding ?? null,
    clientId: message.clientId ?? null,
    connectionId: message.connectionId ?? null,
    timestamp: message.timestamp ?? null,
    serial: message.serial ?? null,
    action: message.action ?? null,
    extras: message.extras ?? null,
  };
}

/** All pages of a PaginatedResult, each as {items, hasNext, isLast}; stops after maxPages. */
export async function pages(first, fields = messageFields, maxPages = 50) {
  const out = [];
  let page = first;
  while (page) {
    out.push({ items: page.items.map(fields), hasNext: page.hasNext(), isLast: page.isLast() });
    if (out.length >= maxPages || !page.hasNext()) break;
    page = await page.next();
  }
  return out;
}

async function closeAll() {
  await Promise.all(
    clients.map(async (client) => {
      const state = client.connection.state;
      if (state === 'closed' || state === 'failed') return;
      try {
        client.close();
        await withTimeout(
          new Promise((resolve) => {
            const done = () => resolve();
            client.connection.once('closed', done);
            client.connection.once('failed', done);
          }),
          'close',
          2000,
        );
      } catch {
        // A relay that does not answer CLOSE must not hide the result; the test still reports it.
      }
    }),
  );
}

function report(payload, code) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  process.stdout.write(RESULT_PREFIX + text + '\n', () => process.exit(code));
}

/** Run `main`, print its result for pytest and exit; fail on error or after the deadline. */
export function run(main) {
  const deadline = setTimeout(() => {
    report({ failure: { message: `script deadline of ${timeoutMs} ms exceeded` } }, 1);
  }, timeoutMs);
  Promise.resolve()
    .then(main)
    .then(
      async (result) => {
        // Serialise first: closing the clients must not change what the script observed.
        const text = JSON.stringify(result ?? {});
        await closeAll();
        clearTimeout(deadline);
        report(text, 0);
      },
      (err) => {
        clearTimeout(deadline);
        process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
        report({ failure: { ...errorInfo(err), stack: String(err && err.stack) } }, 1);
      },
    );
}
