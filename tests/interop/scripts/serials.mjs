// The serial in a publish's ACK equals the serial delivered to subscribers and the one in history.
import { args, collect, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const publisher = realtime();
  const subscriber = realtime();
  await Promise.all([connected(publisher), connected(subscriber)]);
  const inbox = collect(subscriber.channels.get(args.channel), args.singles + 3 + args.pipelined);
  await inbox.attached;
  const channel = publisher.channels.get(args.channel);

  const acks = [];
  for (let i = 0; i < args.singles; i++) acks.push(await channel.publish(`single-${i}`, String(i)));
  // Several messages in one ProtocolMessage: one ACK with one serial per message.
  acks.push(await channel.publish([{ name: 'multi-0' }, { name: 'multi-1' }, { name: 'multi-2' }]));
  // Pipelined publishes, not awaited one by one, are ACKed in order.
  const pipelined = await Promise.all(
    Array.from({ length: args.pipelined }, (_, i) => channel.publish(`pipelined-${i}`, String(i))),
  );
  const received = await inbox.done;
  const history = await channel.history({ direction: 'forwards', limit: 1000 });

  return {
    acks,
    pipelined,
    received: received.map((m) => ({ name: m.name, serial: m.serial ?? null })),
    history: history.items.map((m) => ({ name: m.name, serial: m.serial ?? null })),
  };
});
