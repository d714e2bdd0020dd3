// REST batch publish (one spec, several specs, one failing channel) and batch presence.
// batchPublish sends its specs unencoded (no message encoding, unlike publish()), so the
// payloads here are strings and objects, which both wire formats carry alike.
import { args, connected, realtime, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = rest();
  const single = await client.batchPublish({
    channels: [args.a, args.b],
    messages: [{ name: 'n', data: 'one' }, { name: 'n', data: { k: 1 } }],
  });
  const several = await client.batchPublish([
    { channels: args.a, messages: { name: 'second', data: 'two' } },
    { channels: [args.b, ':bad'], messages: { name: 'third', data: 'three' } },
  ]);
  const historyA = await client.channels.get(args.a).history({ direction: 'forwards' });
  const historyB = await client.channels.get(args.b).history({ direction: 'forwards' });

  const member = realtime({ clientId: 'carol' });
  await connected(member);
  await member.channels.get(args.a).presence.enter('here');
  const presence = await client.batchPresence([args.a, args.b, ':bad']);
  member.close();

  const data = (m) => m.data;
  return {
    single,
    several,
    historyA: historyA.items.map(data),
    historyB: historyB.items.map(data),
    presence,
  };
});
