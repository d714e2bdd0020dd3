// Messages published over REST (one, then an array) reach a realtime subscriber and its history.
import { args, collect, connected, messageFields, realtime, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime();
  await connected(client);
  const channel = client.channels.get(args.channel);
  const inbox = collect(channel, 4);
  await inbox.attached;

  const restChannel = rest().channels.get(args.channel);
  const single = await restChannel.publish('single', 'one');
  const batch = await restChannel.publish([
    { name: 'batch-a', data: 'a' },
    { name: 'batch-b', data: { b: true } },
    { name: 'batch-c', data: Buffer.from('c') },
  ]);
  const received = await inbox.done;
  const history = await channel.history({ direction: 'forwards' });

  return {
    singleResult: single,
    batchResult: batch,
    received: received.map(messageFields),
    history: history.items.map(messageFields),
  };
});
