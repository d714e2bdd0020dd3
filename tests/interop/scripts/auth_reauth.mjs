// In-band reauth (auth.authorize) to a narrower capability: the connection stays up, the channel
// no longer granted FAILS with 40160, the others stay attached and keep receiving.
import { args, connected, realtime, rest, run } from '../lib/relay.mjs';
import { channelState, countingCallback, nextMessage, outcome, recordStates, tokenRealtime } from '../lib/auth.mjs';

run(async () => {
  const admin = rest();
  const wide = { [args.keep]: ['*'], [args.drop]: ['*'] };
  const narrow = { [args.keep]: ['*'] };
  const source = countingCallback((params, call) =>
    admin.auth.createTokenRequest({ clientId: 'reauth', capability: call === 1 ? wide : narrow }),
  );
  const client = tokenRealtime({ authCallback: source.authCallback });
  const publisher = realtime();
  const states = recordStates(client);
  await Promise.all([connected(client), connected(publisher)]);
  const keep = client.channels.get(args.keep);
  const drop = client.channels.get(args.drop);
  await Promise.all([keep.attach(), drop.attach()]);
  const connectionId = client.connection.id;

  const dropFailed = channelState(drop, 'failed', 5000);
  const details = await client.auth.authorize();
  const failed = await dropFailed;

  const arrival = nextMessage(keep, 'after');
  await publisher.channels.get(args.keep).publish('after', 'still flowing');
  const after = await arrival;
  const ownPublish = await outcome(keep.publish('own', 'allowed'));

  return {
    capability: JSON.parse(details.capability),
    failed,
    keepState: keep.state,
    after: after.data,
    ownPublish,
    sameConnection: client.connection.id === connectionId,
    states: states.map((s) => s.current),
    tokenRequests: source.calls(),
  };
});
