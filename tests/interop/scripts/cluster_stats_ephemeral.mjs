// Across the nodes of a cluster: stats() on node B counts what was published through node A
// (once A has flushed its counts), and a 20 KB ephemeral message published through A reaches a
// subscriber on B.
//
// args: channel, ports ([a, b]), count (messages published through A).
import { args, connected, realtime, rest, run, withTimeout } from '../lib/relay.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function inboundCount(client) {
  const minutes = (await client.stats({ unit: 'minute', limit: 100 })).items;
  return minutes.reduce((sum, m) => sum + (m.entries['messages.inbound.all.messages.count'] ?? 0), 0);
}

run(async () => {
  const [a, b] = args.ports;
  const out = {};
  const onA = rest({ port: a }).channels.get(args.channel);
  for (let i = 0; i < args.count; i += 1) await onA.publish('counted', `m${i}`);
  const statsB = rest({ port: b });
  out.countedOnB = await withTimeout(
    (async () => {
      for (;;) {
        const n = await inboundCount(statsB);
        if (n >= args.count) return n;
        await sleep(100);
      }
    })(),
    "node A's publishes in node B's stats",
  );

  const subscriber = realtime({ port: b });
  await connected(subscriber);
  const channel = subscriber.channels.get(`${args.channel}-live`);
  const received = new Promise((resolve) => channel.subscribe('big', resolve));
  await channel.attach();
  const publisher = realtime({ port: a });
  await connected(publisher);
  const big = 'x'.repeat(20_000);
  await publisher.channels.get(`${args.channel}-live`).publish({ name: 'big', data: big, extras: { ephemeral: true } });
  const message = await withTimeout(received, 'the 20 KB ephemeral message on node B');
  out.ephemeral = { size: message.data.length, intact: message.data === big, serial: message.serial ?? null };
  return out;
});
