// ably-js publishes without attaching first (RealtimeChannel.publish does not attach); the
// publish is ACKed and delivered to subscribers like any other.
import { args, collect, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const publisher = realtime();
  const subscriber = realtime();
  await Promise.all([connected(publisher), connected(subscriber)]);
  const inbox = collect(subscriber.channels.get(args.channel), 1);
  await inbox.attached;

  const channel = publisher.channels.get(args.channel);
  const result = await channel.publish('no-attach', 'fire and forget');
  const [received] = await inbox.done;
  return { result, publisherChannelState: channel.state, received: received.name, serial: received.serial };
});
