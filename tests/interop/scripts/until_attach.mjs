// history({untilAttach: true}) (newest first) ends at the attach point: nothing published after it.
import { args, connected, realtime, rest, run } from '../lib/relay.mjs';

run(async () => {
  const restChannel = rest().channels.get(args.channel);
  await restChannel.publish([{ name: 'before-1' }, { name: 'before-2' }, { name: 'before-3' }]);

  const client = realtime();
  await connected(client);
  const channel = client.channels.get(args.channel);
  await channel.attach();
  await channel.publish('after-1', 'x');

  const untilAttach = await channel.history({ untilAttach: true });
  const all = await channel.history();
  return {
    attachSerial: channel.properties.attachSerial ?? null,
    untilAttach: untilAttach.items.map((m) => m.name),
    all: all.items.map((m) => m.name),
  };
});
