// A subscriber and a publisher on one channel, for the continuity tests (issue 4).
//
// The publisher streams args.count messages m0..m{count-1}, args.inFlight publishes awaited at a
// time; the subscriber collects them. Progress goes to stdout as `EVENT {json}` lines so the test
// can break things mid-stream: {ev:'ready'}, {ev:'recv', n}, {ev:'acked', n}, {ev:'state', who,
// current, previous, id, reason}, {ev:'channel', who, current, resumed, reason}, {ev:'puberr', i, code}.
//
// args: channel, count, inFlight, subPort/pubPort (default RELAY_PORT), subOptions/pubOptions
// (extra ClientOptions), explicitIds (publish with id `${runId}:${i}` and retry a failed publish
// with the same id, so the relay's idempotency stores it once), pauseMs (between windows).
//
// Once every publish is ACKed the publisher sends a marker 'end'; the subscriber waits for it, so
// any duplicate of an earlier message would have arrived before the script reports.
import { args, connected, errorInfo, realtime, run, untilEnd, withTimeout } from '../lib/relay.mjs';

const event = (e) => process.stdout.write(`EVENT ${JSON.stringify(e)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function watch(client, who) {
  client.connection.on((change) => {
    event({
      ev: 'state',
      who,
      current: change.current,
      previous: change.previous,
      id: client.connection.id ?? null,
      reason: errorInfo(change.reason),
      errorReason: errorInfo(client.connection.errorReason),
    });
  });
}

run(async () => {
  const count = args.count;
  const inFlight = args.inFlight ?? 50;
  const runId = `run${Date.now().toString(36)}`;

  const sub = realtime({ clientId: 'sub', ...(args.subPort ? { port: args.subPort } : {}), ...(args.subOptions || {}) });
  watch(sub, 'sub');
  await connected(sub);
  const firstId = sub.connection.id;
  const subChannel = sub.channels.get(args.channel);
  subChannel.on((change) => {
    event({ ev: 'channel', who: 'sub', current: change.current, resumed: change.resumed ?? null, reason: errorInfo(change.reason) });
  });
  const { received, ended } = await untilEnd(subChannel, (got) => {
    if (got.length % 50 === 0) event({ ev: 'recv', n: got.length });
  });
  event({ ev: 'ready', id: firstId });

  const pub = realtime({ clientId: 'pub', ...(args.pubPort ? { port: args.pubPort } : {}), ...(args.pubOptions || {}) });
  watch(pub, 'pub');
  await connected(pub);
  const pubChannel = pub.channels.get(args.channel);

  const acked = new Map();
  const publishOne = async (i) => {
    const message = { name: `m${i}`, data: String(i) };
    if (args.explicitIds) message.id = `${runId}:${i}`;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const result = await pubChannel.publish(message);
        acked.set(i, result && result.serials ? result.serials[0] : null);
        return;
      } catch (err) {
        event({ ev: 'puberr', i, attempt, error: errorInfo(err) });
        if (!args.explicitIds || attempt >= 20) throw err;
        await sleep(250);
      }
    }
  };
  for (let start = 0; start < count; start += inFlight) {
    const window = [];
    for (let i = start; i < Math.min(start + inFlight, count); i += 1) window.push(publishOne(i));
    await Promise.all(window);
    event({ ev: 'acked', n: acked.size });
    if (args.pauseMs) await sleep(args.pauseMs);
  }
  await pubChannel.publish('end', 'end');
  await withTimeout(ended, `the end marker (received ${received.length} of ${count})`);

  return {
    received,
    acked: Array.from({ length: count }, (_, i) => acked.get(i) ?? null),
    firstId,
    lastId: sub.connection.id,
    pubLastId: pub.connection.id,
    subState: sub.connection.state,
  };
});
