// Concurrent publishers on one channel: every subscriber, whatever its format, sees the same
// order, which is the serial order and the history order.
import { args, collect, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const publishers = [realtime({ format: 'msgpack' }), realtime({ format: 'json' }), realtime()];
  const subscribers = [realtime({ format: 'msgpack' }), realtime({ format: 'json' })];
  await Promise.all([...publishers, ...subscribers].map(connected));
  const total = publishers.length * args.each;
  const inboxes = subscribers.map((s) => collect(s.channels.get(args.channel), total));
  await Promise.all(inboxes.map((i) => i.attached));

  const acks = await Promise.all(
    publishers.map((p, n) => {
      const channel = p.channels.get(args.channel);
      return Promise.all(Array.from({ length: args.each }, (_, i) => channel.publish(`p${n}-${i}`, 'x')));
    }),
  );
  const received = await Promise.all(inboxes.map((i) => i.done));
  const history = [];
  let page = await publishers[0].channels.get(args.channel).history({ direction: 'forwards', limit: 1000 });
  history.push(...page.items);
  while (page.hasNext()) {
    page = await page.next();
    history.push(...page.items);
  }
  const view = (m) => ({ name: m.name, serial: m.serial });
  return {
    acks: acks.map((list) => list.map((r) => r.serials[0])),
    received: received.map((list) => list.map(view)),
    history: history.map(view),
  };
});
