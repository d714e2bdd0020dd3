// Extras only msgpack can carry (binary, NaN) are refused with 40032 when ably-js publishes them
// over msgpack, instead of being stored where JSON subscribers and JSON history could not read
// them; a JSON subscriber and JSON history see only what was accepted, and both clients stay
// connected.
import { args, connected, errorInfo, realtime, rejection, rest, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const publisher = realtime({ format: 'msgpack' });
  const reader = realtime({ format: 'json' });
  await Promise.all([connected(publisher), connected(reader)]);
  const received = [];
  const readerChannel = reader.channels.get(args.channel);
  await readerChannel.subscribe((message) => received.push(message.name));
  const afterSeen = new Promise((resolve) => readerChannel.subscribe('after', resolve));
  const channel = publisher.channels.get(args.channel);
  await channel.attach();

  const binaryError = await rejection(
    channel.publish({ name: 'binary', data: 'x', extras: { headers: { blob: Buffer.from([0, 1]) } } }),
  );
  const nanError = await rejection(channel.publish({ name: 'nan', data: 'x', extras: { v: NaN } }));
  await channel.publish({ name: 'after', data: 'x', extras: { headers: { k: 'v' } } });
  await withTimeout(afterSeen, "the JSON subscriber's 'after'");

  const history = await rest({ format: 'json' }).channels.get(args.channel).history();
  return {
    binaryError,
    nanError,
    received,
    history: history.items.map((m) => m.name),
    publisherState: publisher.connection.state,
    readerState: reader.connection.state,
    readerError: errorInfo(reader.connection.errorReason),
  };
});
