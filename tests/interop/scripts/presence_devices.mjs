// Two devices of one user (clientId 'alice' on two connections) and another user ('bob') enter,
// update and leave one channel; every client watches presence and reads presence.get().
//
// args: channel. Result: ids {phone, laptop, bob} (connection ids), events {who: [member]},
// sets {stage: {who: canonical members}} for stages entered/updated/left, aliceOnly {who: n}.
import { args, connected, realtime, run } from '../lib/relay.mjs';
import { canonical, record, seen, until } from './presence_common.mjs';

run(async () => {
  const clients = {
    phone: realtime({ clientId: 'alice' }),
    laptop: realtime({ clientId: 'alice' }),
    bob: realtime({ clientId: 'bob' }),
  };
  const who = Object.keys(clients);
  await Promise.all(who.map((w) => connected(clients[w])));
  const channels = {};
  const recorded = {};
  for (const w of who) {
    channels[w] = clients[w].channels.get(args.channel);
    recorded[w] = record(channels[w]);
    await recorded[w].ready;
  }
  const ids = Object.fromEntries(who.map((w) => [w, clients[w].connection.id]));
  const sets = {};
  const everyone = async (stage, predicate) => {
    const got = await Promise.all(who.map((w) => until(channels[w], predicate, `${w} to see ${stage}`)));
    sets[stage] = Object.fromEntries(who.map((w, i) => [w, canonical(got[i])]));
  };

  await channels.phone.presence.enter({ device: 'phone' });
  await channels.laptop.presence.enter({ device: 'laptop' });
  await channels.bob.presence.enter('bob here');
  await everyone('entered', (ms) => ms.length === 3);

  await channels.phone.presence.update({ device: 'phone', status: 'away' });
  await everyone('updated', (ms) => ms.some((m) => m.data && m.data.status === 'away'));

  await channels.laptop.presence.leave();
  await everyone('left', (ms) => ms.length === 2);
  // Every client gets the leave event itself too (not only the member set change).
  for (const w of who) {
    await seen(recorded[w].events, (e) => e.action === 'leave', `${w} to see the leave event`);
  }

  const aliceOnly = {};
  for (const w of who) {
    aliceOnly[w] = (await channels[w].presence.get({ clientId: 'alice' })).length;
  }
  const events = Object.fromEntries(who.map((w) => [w, recorded[w].events]));
  return { ids, events, sets, aliceOnly };
});
