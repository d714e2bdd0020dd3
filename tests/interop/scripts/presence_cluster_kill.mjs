// Presence across three relay nodes, one of which the test kills (test_interop_presence_cluster.py).
//
// args: channel, ports {a, b, c}. alice enters through node a, bob through b, carol through c;
// then a fresh observer attaches on each node. EVENT {ev:'ready'} once every client lists the
// three members. The test then SIGKILLs node b: the script waits for bob's leave on the
// observers of a and c and for their presence.get() to list alice and carol only.
// Result: before {who: canonical set}, after {who: canonical set}, events {who: [...]}
// (presence events each observer received from the moment it was attached).
import { args, connected, realtime, run } from '../lib/relay.mjs';
import { canonical, event, record, seen, until } from './presence_common.mjs';

const MEMBERS = { alice: 'a', bob: 'b', carol: 'c' };
const OBSERVERS = { observerA: 'a', observerB: 'b', observerC: 'c' };

run(async () => {
  const channels = {};
  for (const [who, node] of Object.entries(MEMBERS)) {
    const client = realtime({ clientId: who, port: args.ports[node] });
    await connected(client);
    channels[who] = client.channels.get(args.channel);
    await channels[who].presence.enter(`${who} via ${node}`);
  }
  const three = (ms) => ms.length === 3 && ['alice', 'bob', 'carol'].every((id) => ms.some((m) => m.clientId === id));
  await Promise.all(Object.keys(MEMBERS).map((who) => until(channels[who], three, `${who} to list the three members`)));
  // Observers attach once everyone is in: what they list came in the SYNC of their node.
  const recorded = {};
  for (const [who, node] of Object.entries(OBSERVERS)) {
    const client = realtime({ clientId: who, port: args.ports[node] });
    await connected(client);
    channels[who] = client.channels.get(args.channel);
    recorded[who] = record(channels[who]);
    await recorded[who].ready;
  }
  const before = {};
  for (const who of Object.keys(channels)) {
    before[who] = canonical(await until(channels[who], three, `${who} to list the three members`));
  }
  event({ ev: 'ready' });

  // Node b is killed now: its members leave, announced by a surviving node.
  const survivors = ['alice', 'carol', 'observerA', 'observerC'];
  for (const who of ['observerA', 'observerC']) {
    await seen(recorded[who].events, (e) => e.action === 'leave' && e.clientId === 'bob', `${who} to hear bob leave`);
  }
  const two = (ms) => ms.length === 2 && ['alice', 'carol'].every((id) => ms.some((m) => m.clientId === id));
  const after = {};
  for (const who of survivors) {
    after[who] = canonical(await until(channels[who], two, `${who} to list alice and carol only`));
  }
  const events = {};
  for (const who of ['observerA', 'observerC']) events[who] = recorded[who].events;
  return { before, after, events };
});
