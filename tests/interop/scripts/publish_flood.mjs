// One connection publishes args.count messages at once, none awaited before the next is sent, while
// another receives them: every publish is ACKed in the order sent (serials ascending) and every
// message delivered once, in order, even when the relay stops reading the publisher's socket for a
// while because too many of its publishes wait for a commit.
import { args, collect, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const publisher = realtime();
  const subscriber = realtime();
  await Promise.all([connected(publisher), connected(subscriber)]);
  const inbox = collect(subscriber.channels.get(args.channel), args.count);
  await inbox.attached;
  const channel = publisher.channels.get(args.channel);
  await channel.attach();
  const acked = [];
  const serials = await Promise.all(
    Array.from({ length: args.count }, (_, i) =>
      channel.publish('n', String(i)).then((result) => {
        acked.push(i);
        return result.serials[0];
      }),
    ),
  );
  const received = await inbox.done;
  publisher.close();
  subscriber.close();
  return { acked, serials, received: received.map((m) => m.data) };
});
