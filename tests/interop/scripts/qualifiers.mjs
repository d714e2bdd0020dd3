// Channel qualifiers through ably-js 2.28: a derived channel (getDerived with a filter over
// name and extras.headers) receives only matching messages under its own name; `[?rewind=2]x`
// attaches x with the rewind param; `[meta]x` needs a capability for metachannels.
import { args, collect, connected, realtime, rejection, rest, run } from '../lib/relay.mjs';

run(async () => {
  const base = args.channel;
  const client = realtime();
  await connected(client);
  const restChannel = rest().channels.get(base);
  await restChannel.publish('before-1', 'one');
  await restChannel.publish('before-2', 'two');
  await restChannel.publish('before-3', 'three');

  const derived = client.channels.getDerived(base, { filter: 'name == `"keep"` && headers.n > `10`' });
  const filtered = collect(derived, 2);
  await filtered.attached;
  const plain = collect(client.channels.get(base), 4);
  await plain.attached;

  const rewound = collect(client.channels.get(`[?rewind=2]${base}`), 6);
  await rewound.attached;

  await restChannel.publish({ name: 'keep', data: 'a', extras: { headers: { n: 11 } } });
  await restChannel.publish({ name: 'keep', data: 'b', extras: { headers: { n: 5 } } });
  await restChannel.publish({ name: 'drop', data: 'c', extras: { headers: { n: 50 } } });
  await restChannel.publish({ name: 'keep', data: 'd', extras: { headers: { n: 12 } } });
  await plain.done;
  await filtered.done;

  const meta = await rejection(client.channels.get(`[meta]${base}`).attach());
  const bad = await rejection(client.channels.get(`[nonsense]${base}`).attach());
  return {
    derivedName: derived.name,
    filtered: filtered.received.map((m) => ({ name: m.name, data: m.data })),
    plain: plain.received.map((m) => m.data),
    rewound: (await rewound.done).map((m) => m.data),
    meta,
    bad,
  };
});
