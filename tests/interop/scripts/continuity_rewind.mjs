// The `rewind` channel param through ably-js: "N" gives the last N then live, a duration gives
// the recent ones, an invalid value fails the channel (40003).
// args: channel (with 10 messages r0..r9 published by the test), liveChannel (empty).
import { args, connected, errorInfo, realtime, run, withTimeout } from '../lib/relay.mjs';

function inbox(channel, count) {
  const names = [];
  let resolve;
  const done = new Promise((r) => {
    resolve = r;
  });
  const attached = channel.subscribe((message) => {
    names.push(message.name);
    if (names.length >= count) resolve();
  });
  return { names, attached, done: withTimeout(done, `${count} messages on ${channel.name}`) };
}

run(async () => {
  const client = realtime();
  await connected(client);

  // rewind "3": the last three, then whatever is published afterwards.
  const byCount = client.channels.get(args.channel, { params: { rewind: '3' } });
  const countInbox = inbox(byCount, 5);
  await countInbox.attached;
  const publisher = realtime();
  await connected(publisher);
  const pubChannel = publisher.channels.get(args.channel);
  await pubChannel.publish('live0', 'x');
  await pubChannel.publish('live1', 'x');
  await countInbox.done;

  // rewind "2m": everything of the last two minutes (all ten, then the two live ones).
  const other = realtime();
  await connected(other);
  const byTime = other.channels.get(args.channel, { params: { rewind: '2m' } });
  const timeInbox = inbox(byTime, 12);
  await timeInbox.attached;
  await timeInbox.done;

  // An invalid rewind fails the attach and the channel.
  const bad = client.channels.get(args.liveChannel, { params: { rewind: 'soon' } });
  let attachError = null;
  try {
    await bad.attach();
  } catch (err) {
    attachError = errorInfo(err);
  }
  // Let any stray delivery arrive before reporting (a late extra would show in the lists).
  await new Promise((r) => setTimeout(r, 200));
  return {
    byCount: countInbox.names,
    byCountParams: byCount.params ?? null,
    byTime: timeInbox.names,
    attachError,
    badState: bad.state,
    badReason: errorInfo(bad.errorReason),
  };
});
