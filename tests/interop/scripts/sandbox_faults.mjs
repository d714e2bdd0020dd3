// Fault injection seen through ably-js. Before this runs, the test has made the next
// args.failures publishes on args.failChannel fail (Python API). The script then uses the
// sandbox admin route (POST/DELETE /sandbox/faults) to drop its own connection and to delay a
// channel. Result: {nacks, restError, afterFailures, drop: {...}, delay: {...}}.
import { args, connected, errorInfo, key, once, port, realtime, rest, run } from '../lib/relay.mjs';

const base = `http://localhost:${port}`;
const auth = { Authorization: 'Basic ' + Buffer.from(key).toString('base64') };

async function admin(method, body) {
  const response = await fetch(`${base}/sandbox/faults`, {
    method,
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} /sandbox/faults: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function outcome(promise) {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return errorInfo(err);
  }
}

run(async () => {
  const client = realtime({ clientId: 'dropme' });
  await connected(client);
  const failing = client.channels.get(args.failChannel);
  await failing.attach();

  // 1. Injected publish failures: realtime NACKs, then a REST error, then success again.
  const nacks = [];
  for (let i = 0; i < args.failures - 1; i++) nacks.push(await outcome(failing.publish('m', `n${i}`)));
  const restError = await outcome(rest().channels.get(args.failChannel).publish('m', 'rest'));
  const afterFailures = await outcome(failing.publish('m', 'after'));

  // 2. Drop the connection through the admin route: the SDK resumes the same connection.
  const idBefore = client.connection.id;
  const disconnected = once(client.connection, 'disconnected', 10000, 'disconnected');
  const dropped = await admin('POST', { type: 'drop', clientId: 'dropme' });
  await disconnected;
  await once(client.connection, 'connected', 10000, 'reconnected');
  const drop = { dropped: dropped.dropped, idBefore, idAfter: client.connection.id };

  // 3. Delay deliveries on a channel, then lift the delay.
  const slow = client.channels.get(args.slowChannel);
  const arrivals = [];
  await slow.subscribe((message) => arrivals.push({ data: message.data, at: Date.now() }));
  await admin('POST', { type: 'delay', channel: args.slowChannel, delayMs: args.delayMs });
  const sentDelayed = Date.now();
  await slow.publish('d', 'delayed');
  const ackedDelayed = Date.now() - sentDelayed;
  while (arrivals.length < 1) await new Promise((r) => setTimeout(r, 10));
  await admin('DELETE');
  const sentPrompt = Date.now();
  await slow.publish('d', 'prompt');
  while (arrivals.length < 2) await new Promise((r) => setTimeout(r, 10));
  const delay = {
    order: arrivals.map((a) => a.data),
    delayedMs: arrivals[0].at - sentDelayed,
    ackedDelayedMs: ackedDelayed,
    promptMs: arrivals[1].at - sentPrompt,
  };
  return { nacks, restError, afterFailures, drop, delay };
});
