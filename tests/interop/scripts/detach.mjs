// detach() resolves on DETACHED; attaching again resumes delivery on the same connection.
import { args, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const subscriber = realtime();
  const publisher = realtime();
  await Promise.all([connected(subscriber), connected(publisher)]);
  const channel = subscriber.channels.get(args.channel);
  const first = new Promise((resolve) => channel.subscribe('first', resolve));
  await channel.attach();
  const pubChannel = publisher.channels.get(args.channel);
  await pubChannel.publish('first', 'x');
  await first;

  await channel.detach();
  const stateAfterDetach = channel.state;
  await pubChannel.publish('while-detached', 'x');

  await channel.attach();
  const again = new Promise((resolve) => channel.subscribe('after-reattach', resolve));
  await pubChannel.publish('after-reattach', 'x');
  const message = await again;
  return { stateAfterDetach, stateAfterReattach: channel.state, received: message.name };
});
