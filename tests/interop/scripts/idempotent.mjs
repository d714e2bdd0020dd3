// Publishing the same explicit message ids twice over REST stores and delivers them once.
import { args, collect, connected, messageFields, realtime, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime();
  await connected(client);
  const channel = client.channels.get(args.channel);
  const inbox = collect(channel, 4);
  await inbox.attached;

  const restChannel = rest().channels.get(args.channel);
  const single = { id: 'fixed-id-single:0', name: 'once', data: 'x' };
  const batch = [
    { id: 'fixed-id-batch:0', name: 'batch-0', data: 'a' },
    { id: 'fixed-id-batch:1', name: 'batch-1', data: 'b' },
  ];
  const results = [];
  results.push(await restChannel.publish(single));
  results.push(await restChannel.publish(single));
  results.push(await restChannel.publish(batch));
  results.push(await restChannel.publish(batch));
  // A fresh message after the retries: once it arrives, any duplicate would have arrived too.
  results.push(await restChannel.publish('marker', 'end'));
  await inbox.done;

  const history = await restChannel.history({ direction: 'forwards' });
  return {
    results,
    received: inbox.received.map(messageFields),
    history: history.items.map(messageFields),
  };
});
