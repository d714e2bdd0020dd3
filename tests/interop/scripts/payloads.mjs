// Binary, string and JSON payloads published in one format arrive with the same type and value
// to a subscriber using the other format, and read back the same from history in both formats.
import { args, collect, connected, describe, realtime, rest, run } from '../lib/relay.mjs';

const payloads = [
  { name: 'buffer', data: Buffer.from([0, 1, 2, 253, 254, 255]) },
  { name: 'empty-buffer', data: Buffer.alloc(0) },
  { name: 'utf8-bytes', data: Buffer.from('not a string', 'utf8') },
  { name: 'string', data: 'plain text' },
  { name: 'unicode', data: 'héllo wörld ✓ 🚀' },
  { name: 'base64-looking-string', data: 'AAEC/f7/' },
  { name: 'object', data: { a: 1, nested: { list: [1, 'two', null, true] } } },
  { name: 'array', data: [1, 2, { three: 3 }] },
  { name: 'no-data' },
];

run(async () => {
  const publisher = realtime({ format: args.pub });
  const subscriber = realtime({ format: args.sub });
  await Promise.all([connected(publisher), connected(subscriber)]);

  const inbox = collect(subscriber.channels.get(args.channel), payloads.length);
  await inbox.attached;
  const channel = publisher.channels.get(args.channel);
  for (const payload of payloads) await channel.publish(payload);
  const received = await inbox.done;

  const history = {};
  for (const fmt of ['msgpack', 'json']) {
    const page = await rest({ format: fmt }).channels.get(args.channel).history({ direction: 'forwards' });
    history[fmt] = page.items.map((m) => ({ name: m.name, data: describe(m.data), encoding: m.encoding ?? null }));
  }

  return {
    sent: payloads.map((p) => ({ name: p.name, data: describe(p.data) })),
    received: received.map((m) => ({ name: m.name, data: describe(m.data), encoding: m.encoding ?? null })),
    history,
  };
});
