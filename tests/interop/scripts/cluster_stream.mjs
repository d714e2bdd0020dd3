// One publisher and several subscribers, each on a relay node of its own (the cluster tests).
//
// args: channel, count, pubPort, subPorts (one subscriber per port), pauseMs (between windows of
// args.inFlight publishes). Every publish has an explicit id and is retried with it when it
// fails, so the cluster's idempotency stores it once. Progress: {ev:'ready'} once every
// subscriber is attached, {ev:'recv', who, n} every 20 messages, {ev:'acked', n}.
// Once every publish is ACKed the publisher sends 'end'; each subscriber waits for it, so a
// duplicate of an earlier message would have arrived before the script reports.
import { args, connected, errorInfo, realtime, run, untilEnd, withTimeout } from '../lib/relay.mjs';

const event = (e) => process.stdout.write(`EVENT ${JSON.stringify(e)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async () => {
  const runId = `run${Date.now().toString(36)}`;
  const subscribers = [];
  for (const [who, port] of args.subPorts.entries()) {
    const client = realtime({ clientId: `sub${who}`, port });
    client.connection.on((change) => {
      event({ ev: 'state', who, current: change.current, reason: errorInfo(change.reason) });
    });
    await connected(client);
    const channel = client.channels.get(args.channel);
    const { received, ended } = await untilEnd(channel, (got) => {
      if (got.length % 20 === 0) event({ ev: 'recv', who, n: got.length });
    });
    subscribers.push({ client, received, ended });
  }
  event({ ev: 'ready' });

  const pub = realtime({ clientId: 'pub', port: args.pubPort });
  await connected(pub);
  const pubChannel = pub.channels.get(args.channel);
  let acked = 0;
  const publishOne = async (i) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await pubChannel.publish({ id: `${runId}:${i}`, name: `m${i}`, data: String(i) });
        acked += 1;
        return;
      } catch (err) {
        if (attempt >= 20) throw err;
        await sleep(250);
      }
    }
  };
  const inFlight = args.inFlight ?? 10;
  for (let start = 0; start < args.count; start += inFlight) {
    const window = [];
    for (let i = start; i < Math.min(start + inFlight, args.count); i += 1) window.push(publishOne(i));
    await Promise.all(window);
    event({ ev: 'acked', n: acked });
    if (args.pauseMs) await sleep(args.pauseMs);
  }
  await pubChannel.publish('end', 'end');
  for (const [who, s] of subscribers.entries()) {
    await withTimeout(s.ended, `subscriber ${who}'s end marker (received ${s.received.length})`);
  }
  return {
    received: subscribers.map((s) => s.received),
    states: subscribers.map((s) => s.client.connection.state),
  };
});
