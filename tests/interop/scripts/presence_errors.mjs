// Presence operations the relay must refuse, each with its Ably error code, without harming the
// connection or the channel; an observer checks that nothing refused reached the member set.
//
// args: channel, limitedKey (a key without the presence capability).
// Result: {anonymousEnter, anonymousEnterClient, limitedEnter, spoofedEnterClient}: ErrorInfo or
// {resolved}; states after each; observed (events); members (final set).
import { args, connected, realtime, rejection, run } from '../lib/relay.mjs';
import { canonical, record, until } from './presence_common.mjs';

run(async () => {
  const observer = realtime({ clientId: 'observer' });
  const anonymous = realtime();
  const limited = realtime({ key: args.limitedKey, clientId: 'limited' });
  const alice = realtime({ clientId: 'alice' });
  await Promise.all([observer, anonymous, limited, alice].map(connected));
  const watched = observer.channels.get(args.channel);
  const observed = record(watched);
  await observed.ready;

  const states = (client, channel) => ({ connection: client.connection.state, channel: channel.state });
  const out = {};

  const anon = anonymous.channels.get(args.channel);
  await anon.attach();
  // ably-js refuses enter() without a clientId itself (40012); enterClient with no clientId
  // reaches the relay, which must refuse it (91000).
  out.anonymousEnter = await rejection(anon.presence.enter('x'));
  out.anonymousEnterClient = await rejection(anon.presence.enterClient(undefined, 'x'));
  out.anonymousAfter = states(anonymous, anon);

  const lim = limited.channels.get(args.channel);
  await lim.attach();
  out.limitedEnter = await rejection(lim.presence.enter('x'));
  out.limitedAfter = states(limited, lim);

  const al = alice.channels.get(args.channel);
  await al.attach();
  out.spoofedEnterClient = await rejection(al.presence.enterClient('mallory', 'x'));
  out.aliceAfter = states(alice, al);
  // The connection is still good for its own clientId.
  out.aliceEnter = await rejection(al.presence.enter('me'));
  out.members = canonical(await until(watched, (ms) => ms.length === 1, 'alice to be the only member'));
  out.observed = observed.events;
  out.aliceId = alice.connection.id;
  return out;
});
