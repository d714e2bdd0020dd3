// echoMessages:false: the publisher's own message is not delivered back to it; others get it.
import { args, collect, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const quiet = realtime({ echoMessages: false });
  const other = realtime();
  await Promise.all([connected(quiet), connected(other)]);

  const quietChannel = quiet.channels.get(args.channel);
  const quietInbox = collect(quietChannel, 1);
  const otherChannel = other.channels.get(args.channel);
  const otherInbox = collect(otherChannel, 2);
  await Promise.all([quietInbox.attached, otherInbox.attached]);

  await quietChannel.publish('from-quiet', 'own message');
  // The other client's marker is ordered after quiet's message on the channel, so once quiet
  // has received the marker it would already have received its own message had it been echoed.
  await otherChannel.publish('marker', 'after');
  await quietInbox.done;
  const otherReceived = await otherInbox.done;

  return {
    quietReceived: quietInbox.received.map((m) => m.name),
    otherReceived: otherReceived.map((m) => m.name),
  };
});
