// Two members (alice, bob) and an observer; the test restarts the relay (same port and database),
// which loses every connection: the clients' resumes fail, they get new connectionIds, and
// ably-js must re-enter its members. Every client must then see exactly the two members again,
// on their new connections.
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
  event({ ev: 'ready', ids: before });

  // The relay goes away; wait for every client to be connected again with a new connectionId.
  await Promise.all(
    who.map((w) =>
      until(
        channels[w],
        () => clients[w].connection.state === 'connected' && clients[w].connection.id !== before[w],
        `${w} to reconnect to the restarted relay`,
      ),
    ),
  );
  const after = Object.fromEntries(who.map((w) => [w, clients[w].connection.id]));
  const expected = (ms) =>
    ms.length === 2 &&
    ms.some((m) => m.clientId === 'alice' && m.connectionId === after.alice) &&
    ms.some((m) => m.clientId === 'bob' && m.connectionId === after.bob);
  const sets = {};
  const results = await Promise.allSettled(
    who.map((w) => until(channels[w], expected, `${w} to see alice and bob on their new connections`, 8000)),
  );
  for (const [i, w] of who.entries()) {
    sets[w] = canonical((await channels[w].presence.get()));
    if (results[i].status === 'rejected') sets[w].push({ timedOut: true });
  }
  await settled(args.release);
  return { before, after, sets, observed: observed.events };
});
