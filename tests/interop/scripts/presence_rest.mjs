// Members enter, update and leave over realtime; an observer records the events live. Then the
// REST API (Ably.Rest in the same format, and the realtime client's own presence.history) is read
// back: current members with filters, and presence history paged in both directions.
//
// args: channel. Result: ids, live (observer's events), realtime {all, alice, byConnection},
// rest {all, alice, byConnection, limited (pages of limit 2)}, history {forwards, backwards,
// realtimeBackwards} (pages of {items, hasNext, isLast}).
import { args, connected, pages, realtime, rest, run } from '../lib/relay.mjs';
import { canonical, member, record, seen, until } from './presence_common.mjs';

run(async () => {
  const clients = {
    alice1: realtime({ clientId: 'alice' }),
    alice2: realtime({ clientId: 'alice' }),
    bob: realtime({ clientId: 'bob' }),
    carol: realtime({ clientId: 'carol' }),
    observer: realtime({ clientId: 'observer' }),
  };
  await Promise.all(Object.values(clients).map(connected));
  const ids = Object.fromEntries(Object.entries(clients).map(([w, c]) => [w, c.connection.id]));
  const ch = Object.fromEntries(Object.entries(clients).map(([w, c]) => [w, c.channels.get(args.channel)]));
  const live = record(ch.observer);
  await live.ready;

  await ch.alice1.presence.enter('a1');
  await ch.alice2.presence.enter('a2');
  await ch.bob.presence.enter({ mood: 'ok' });
  await ch.bob.presence.update({ mood: 'great' });
  await ch.carol.presence.enter('c');
  await ch.carol.presence.leave('bye');
  await seen(live.events, () => live.events.length >= 6, 'the observer to see 6 events');
  await until(ch.observer, (ms) => ms.length === 3, 'the observer to see 3 members');

  const realtimeView = {
    all: canonical(await ch.observer.presence.get()),
    alice: canonical(await ch.observer.presence.get({ clientId: 'alice' })),
    byConnection: canonical(await ch.observer.presence.get({ connectionId: ids.alice2 })),
  };
  const restChannel = rest().channels.get(args.channel);
  const restPresence = async (params) => canonical((await restChannel.presence.get(params)).items);
  const restView = {
    all: await restPresence({}),
    alice: await restPresence({ clientId: 'alice' }),
    byConnection: await restPresence({ connectionId: ids.alice2 }),
    limited: await pages(await restChannel.presence.get({ limit: 2 }), member),
  };
  const history = {
    forwards: await pages(await restChannel.presence.history({ direction: 'forwards', limit: 2 }), member),
    backwards: await pages(await restChannel.presence.history({ limit: 4 }), member),
    realtimeBackwards: await pages(await ch.observer.presence.history({ limit: 5 }), member),
  };
  return { ids, live: live.events, realtime: realtimeView, rest: restView, history };
});
