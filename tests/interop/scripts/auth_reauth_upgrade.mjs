// In-band reauth (auth.authorize) to a wider capability, as ably-js's realtime/reauth
// reauthCapabilityUpgradeAddPublish does: a channel attached while publishing was not allowed
// (40160) may publish once the new token allows it, with no reattach.
//
// args: channel.
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, outcome, tokenRealtime } from '../lib/auth.mjs';

run(async () => {
  const admin = rest();
  const source = countingCallback((params, call) =>
    admin.auth.createTokenRequest({
      clientId: 'upgrade',
      capability: { [args.channel]: call === 1 ? ['subscribe'] : ['subscribe', 'publish'] },
    }),
  );
  const client = tokenRealtime({ authCallback: source.authCallback });
  await connected(client);
  const channel = client.channels.get(args.channel);
  await channel.attach();
  const before = await outcome(channel.publish('before', 'refused'));
  await client.auth.authorize();
  const after = await outcome(channel.publish('after', 'allowed'));
  return { before, after, state: channel.state, modes: channel.modes };
});
