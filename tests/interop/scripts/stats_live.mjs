// Live stats through ably-js 2.28: after publishes, the current minute and hour carry what the
// relay counted (in Ably's entry names), marked inProgress.
import { args, collect, connected, realtime, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime({ clientId: 'counted' });
  await connected(client);
  const inbox = collect(client.channels.get(args.channel), 3);
  await inbox.attached;
  const channel = rest().channels.get(args.channel);
  await channel.publish('a', 'xxxx');
  await channel.publish([{ name: 'b', data: 'yy' }, { name: 'c', data: 'z', extras: { ephemeral: true } }]);
  await inbox.done;
  await client.channels.get(args.channel).presence.enter('here');
  const minute = (await rest().stats({ unit: 'minute', end: Date.now() })).items[0];
  const hour = (await rest().stats({ unit: 'hour', end: Date.now() })).items[0];
  return { minute, hour };
});
