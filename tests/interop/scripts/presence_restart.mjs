// Two members (alice, bob) and an observer; the test restarts the relay (same port and database).
// The connections resume (their state is in the database) but the members did not survive in
// the relay's memory: the members' re-attach is not RESUMED, so ably-js must re-enter them.
// Every client must then see exactly the two members again, on their connections.
//
// args: channel, release, retry ({who: disconnectedRetryTimeout ms}).
// EVENT {ev:'ready', ids}. Result: before/after ids, sets {who: canonical}, observed (events).
import { args, connected, realtime, run } from '../lib/relay.mjs';
import { canonical, event, record, settled, until } from './presence_common.mjs';

run(async () => {
  const retry = args.retry || {};
  const make = (who, clientId) =>
    realtime({ clientId, disconnectedRetryTimeout: retry[who] ?? 300, suspendedRetryTimeout: 300 });
  const clients = { alice: make('alice', 'alice'), bob: make('bob', 'bob'), observer: make('observer', 'observer') };
  const who = Object.keys(clients);
  await Promise.all(who.map((w) => connected(clients[w])));
  const channels = Object.fromEntries(who.map((w) => [w, clients[w].channels.get(args.channel)]));
  const observed = record(channels.observer);
  await observed.ready;
  await channels.alice.presence.enter('a');
  await channels.bob.presence.enter('b');
  await Promise.all(who.map((w) => until(channels[w], (ms) => ms.length === 2, `${w} to see both members`)));
  const before = Object.fromEntries(who.map((w) => [w, clients[w].connection.id]));
  const reconnected = who.map(
    (w) =>
      new Promise((resolve) => {
        clients[w].connection.once('disconnected', () => clients[w].connection.once('connected', resolve));
      }),
  );
  event({ ev: 'ready', ids: before });

  // The relay goes away; wait for every client to be connected again.
  await Promise.all(reconnected);
  const after = Object.fromEntries(who.map((w) => [w, clients[w].connection.id]));
  const expected = (ms) =>
    ms.length === 2 &&
    ms.some((m) => m.clientId === 'alice' && m.connectionId === after.alice) &&
    ms.some((m) => m.clientId === 'bob' && m.connectionId === after.bob);
  const sets = {};
  const results = await Promise.allSettled(
    who.map((w) => until(channels[w], expected, `${w} to see alice and bob on their connections`, 8000)),
  );
  for (const [i, w] of who.entries()) {
    sets[w] = canonical((await channels[w].presence.get()));
    if (results[i].status === 'rejected') sets[w].push({ timedOut: true });
  }
  await settled(args.release);
  return { before, after, sets, observed: observed.events };
});
