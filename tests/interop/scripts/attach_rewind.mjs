// Rewind as ably-js users ask for it, one case per run (args.check):
//   numeric   `{rewind: 1}` as a number (realtime/resume resume_rewind_1), then live
//   backlog   hasBacklog on an attach a replay follows, not on one with nothing to replay
//             (realtime/channel rewind_has_backlog_0/1)
//   reattach  a rewind attach right behind the channel's own publish, then again after
//             detaching (realtime/channel "rewind works on channel after reattaching": the
//             publish commits while the attach reads the log)
//
// args: check, channel (a prefix).
import { args, collect, connected, realtime, rest, run, withTimeout } from '../lib/relay.mjs';

const checks = {
  async numeric(client) {
    const pub = rest().channels.get(args.channel);
    await pub.publish([{ name: 'one' }, { name: 'two' }, { name: 'three' }]);
    const channel = client.channels.get(args.channel, { params: { rewind: 1 } });
    const rewound = collect(channel, 2);
    await rewound.attached;
    await pub.publish('live', null);
    return { names: (await rewound.done).map((m) => m.name), params: channel.params };
  },

  async backlog(client) {
    await rest().channels.get(`${args.channel}:full`).publish('foo', 'bar');
    const full = await client.channels.get(`${args.channel}:full`, { params: { rewind: '1' } }).attach();
    const empty = await client.channels.get(`${args.channel}:empty`, { params: { rewind: '1' } }).attach();
    return { full: full.hasBacklog, empty: empty.hasBacklog };
  },

  async reattach(client) {
    const channel = client.channels.get(args.channel);
    channel.setOptions({ params: { rewind: '1' } });
    // The publish goes out first, the attach the subscription starts right after it.
    channel.publish('event', 'message');
    const first = collect(channel, 1);
    const firstData = (await first.done).map((m) => m.data);
    channel.unsubscribe();
    await channel.detach();
    const again = collect(channel, 1);
    const againData = (await withTimeout(again.done, 'the rewound message after reattaching')).map((m) => m.data);
    return { first: firstData, again: againData };
  },
};

run(async () => {
  const client = realtime();
  await connected(client);
  return checks[args.check](client);
});
