// Connections attached with different modes, some with presence members, and the channel's
// occupancy as ably-js reads it (rest.channels.get(n).status()) after each change.
//
// args: channel. Result: {stage: status} for stages all, aliceLeft, multiClosed, subDetached.
import { args, connected, realtime, rest, run } from '../lib/relay.mjs';
import { sleep, until } from './presence_common.mjs';

run(async () => {
  const attach = async (options, modes) => {
    const client = realtime(options);
    await connected(client);
    const channel = client.channels.get(args.channel, modes ? { modes } : {});
    await channel.attach();
    return { client, channel };
  };
  const subOnly = await attach({ clientId: 'sub' }, ['SUBSCRIBE']);
  const presSub = await attach({}, ['PRESENCE_SUBSCRIBE']);
  const pubOnly = await attach({}, ['PUBLISH']);
  const idle = await attach({ clientId: 'idle' }); // may enter, never does
  const multi = await attach({}); // enters two members with enterClient
  const alice = await attach({ clientId: 'alice' });
  await multi.channel.presence.enterClient('m1', 'one');
  await multi.channel.presence.enterClient('m2', 'two');
  await alice.channel.presence.enter('a');
  await until(presSub.channel, (ms) => ms.length === 3, 'three members');

  const restChannel = rest().channels.get(args.channel);
  const statuses = {};
  // Poll: closing and detaching reach the relay a little after ably-js reports them.
  const stage = async (name, done) => {
    for (let i = 0; i < 100; i += 1) {
      const status = await restChannel.status();
      statuses[name] = status;
      if (done(status.status.occupancy.metrics)) return;
      await sleep(20);
    }
  };
  await stage('all', () => true);
  await alice.channel.presence.leave();
  await stage('aliceLeft', (m) => m.presenceMembers === 2);
  multi.client.close();
  await stage('multiClosed', (m) => m.connections === 5 && m.presenceMembers === 0);
  await subOnly.channel.detach();
  await stage('subDetached', (m) => m.connections === 4);
  return statuses;
});
