// vcdiff deltas through ably-js 2.28 and @ably/vcdiff-decoder: a subscriber attached with
// params.delta = 'vcdiff' decodes every message after the first from a delta (JSON objects,
// strings and binary), a subscriber without it gets whole messages, and both see the same data;
// a delta subscriber with echoMessages false, which misses its own messages, is never sent a
// delta against one it did not get.
import vcdiffDecoder from '@ably/vcdiff-decoder';
import { args, collect, connected, describe, realtime, run } from '../lib/relay.mjs';

const payloads = [
  { foo: 'bar', count: 1, status: 'active' },
  { foo: 'bar', count: 2, status: 'active' },
  'a string that changes a little',
  'a string that changed a little',
  Buffer.from('binary payload 0001'),
  Buffer.from('binary payload 0002'),
  { foo: 'bar', count: 3, status: 'inactive' },
];

run(async () => {
  let decodes = 0;
  const counting = {
    decode(delta, base) {
      decodes += 1;
      return vcdiffDecoder.decode(delta, base);
    },
  };
  const deltaClient = realtime({ plugins: { vcdiff: counting } });
  const plainClient = realtime({ plugins: { vcdiff: counting } });
  const publisher = realtime();
  const quiet = realtime({ echoMessages: false, plugins: { vcdiff: vcdiffDecoder } });
  await Promise.all([connected(deltaClient), connected(plainClient), connected(publisher), connected(quiet)]);
  const quietChannel = quiet.channels.get(args.channel, { params: { delta: 'vcdiff' } });
  const quietInbox = collect(quietChannel, payloads.length - 1);
  await quietInbox.attached;
  const deltaChannel = deltaClient.channels.get(args.channel, { params: { delta: 'vcdiff' } });
  const withDeltas = collect(deltaChannel, payloads.length);
  const whole = collect(plainClient.channels.get(args.channel), payloads.length);
  await Promise.all([withDeltas.attached, whole.attached]);
  // A delta the SDK cannot apply makes it re-attach (40018): there must be none.
  const reattaches = [];
  deltaChannel.on('attaching', (change) => reattaches.push(change.reason?.code ?? null));
  quietChannel.on('attaching', (change) => reattaches.push(change.reason?.code ?? null));

  const channel = publisher.channels.get(args.channel);
  for (const [index, payload] of payloads.entries()) {
    await (index === 3 ? quietChannel : channel).publish(String(index), payload);
  }
  const got = await withDeltas.done;
  const plain = await whole.done;
  const quietGot = await quietInbox.done;
  return {
    decodes,
    reattaches,
    attachedParams: deltaChannel.params,
    deltaData: got.map((m) => describe(m.data)),
    plainData: plain.map((m) => describe(m.data)),
    quietData: quietGot.map((m) => describe(m.data)),
    deltaExtras: got.map((m) => m.extras?.delta ?? null),
    ids: got.map((m) => m.id),
  };
});
