// A subscriber on short-lived tokens (args.ttl ms, from auth.createTokenRequest) receives a steady
// stream (args.count messages, one every args.interval ms) across several token renewals.
import { args, connected, realtime, rest, run, withTimeout } from '../lib/relay.mjs';
import { countingCallback, recordStates, sleep, tokenRealtime } from '../lib/auth.mjs';

run(async () => {
  const admin = rest();
  const source = countingCallback((params) =>
    admin.auth.createTokenRequest({ ...params, ttl: args.ttl, clientId: 'streamer' }),
  );
  const subscriber = tokenRealtime({ authCallback: source.authCallback });
  const publisher = realtime();
  const states = recordStates(subscriber);
  await Promise.all([connected(subscriber), connected(publisher)]);
  const connectionIds = new Set([subscriber.connection.id]);
  subscriber.connection.on('connected', () => connectionIds.add(subscriber.connection.id));

  const received = [];
  let resolveAll;
  const all = new Promise((resolve) => {
    resolveAll = resolve;
  });
  const channel = subscriber.channels.get(args.channel);
  await channel.subscribe((message) => {
    received.push({ data: Number(message.data), id: message.id });
    if (received.length === args.count) resolveAll();
  });

  const target = publisher.channels.get(args.channel);
  const acks = [];
  for (let i = 0; i < args.count; i++) {
    acks.push(target.publish('tick', String(i)));
    await sleep(args.interval);
  }
  await Promise.all(acks);
  await withTimeout(all, `${args.count} messages`, 10000);
  await sleep(500); // anything delivered twice would arrive by now

  return {
    data: received.map((m) => m.data),
    ids: received.map((m) => m.id),
    tokenRequests: source.calls(),
    states: states.map((s) => [s.current, s.reason && s.reason.code]),
    connectionIds: [...connectionIds],
    channelState: channel.state,
  };
});
