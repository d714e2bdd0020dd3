// history({start, end}) selects by the relay's timestamps, both bounds inclusive.
import { args, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime();
  await connected(client);
  const channel = client.channels.get(args.channel);
  await channel.attach();
  for (const name of ['a', 'b', 'c']) {
    await channel.publish(name, name);
    // Separate the publishes in time so each has its own millisecond timestamp.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const all = (await channel.history({ direction: 'forwards' })).items;
  const [, b] = all;
  const names = async (params) => (await channel.history(params)).items.map((m) => m.name);
  return {
    timestamps: all.map((m) => m.timestamp),
    exactlyB: await names({ start: b.timestamp, end: b.timestamp }),
    fromB: await names({ start: b.timestamp }),
    untilB: await names({ end: b.timestamp }),
    fromBForwards: await names({ start: b.timestamp, direction: 'forwards' }),
  };
});
