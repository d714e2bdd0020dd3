// A member ('dropper', connected through the test's TCP proxy) and an observer (direct). The test
// drops the dropper's socket and keeps it from reconnecting for a while; the observer records
// what it sees, with its own clock (Date.now(), the same clock as the test's time.time()).
//
// args: channel, proxyPort, release (a file the test creates once it has looked at the relay), retryMs (dropper's disconnectedRetryTimeout), mode:
//   'expire'  - finish once the observer has seen the dropper leave;
//   'resume'  - finish holdMs after the dropper is connected again (resumed);
//   'reenter' - finish once the observer has seen the dropper leave and then enter again.
// EVENT lines: {ev:'ready', dropperId, observerId}, {ev:'presence', ...member, at},
// {ev:'members', keys, at} (each change of the observer's presence.get()), {ev:'state', current,
// previous, id, at} (dropper's connection), {ev:'channel', current, resumed, at} (dropper's channel).
import { args, connected, realtime, run } from '../lib/relay.mjs';
import { event, member, seen, settled, sleep, until } from './presence_common.mjs';

run(async () => {
  const dropper = realtime({
    clientId: 'dropper',
    port: args.proxyPort,
    disconnectedRetryTimeout: args.retryMs ?? 15000,
  });
  const observer = realtime({ clientId: 'observer' });
  await Promise.all([connected(dropper), connected(observer)]);
  const dropperId = dropper.connection.id;
  const states = [];
  dropper.connection.on((change) => {
    const e = { ev: 'state', current: change.current, previous: change.previous, id: dropper.connection.id ?? null, at: Date.now() };
    states.push(e);
    event(e);
  });

  const watched = observer.channels.get(args.channel);
  const events = [];
  await watched.presence.subscribe((p) => {
    const e = { ...member(p), at: Date.now() };
    events.push(e);
    event({ ev: 'presence', ...e });
  });
  const own = dropper.channels.get(args.channel);
  const channelChanges = [];
  own.on((change) => {
    const e = { ev: 'channel', current: change.current, resumed: change.resumed ?? null, at: Date.now() };
    channelChanges.push(e);
    event(e);
  });
  await own.presence.enter({ status: 'here' });
  await until(watched, (ms) => ms.some((m) => m.clientId === 'dropper'), 'the observer to see the dropper');

  let polling = true;
  const snapshots = [];
  const poll = (async () => {
    let last = null;
    while (polling) {
      const keys = (await watched.presence.get()).map((m) => `${m.clientId}:${m.connectionId}`).sort();
      const text = JSON.stringify(keys);
      if (text !== last) {
        last = text;
        const e = { ev: 'members', keys, at: Date.now() };
        snapshots.push(e);
        event(e);
      }
      await sleep(50);
    }
  })();
  event({ ev: 'ready', dropperId, observerId: observer.connection.id });

  const isDropper = (e) => e.clientId === 'dropper';
  if (args.mode === 'expire' || args.mode === 'reenter') {
    const leave = await seen(events, (e) => isDropper(e) && e.action === 'leave', 'the dropper to leave');
    if (args.mode === 'expire') {
      await until(watched, (ms) => !ms.some(isDropper), 'the dropper gone from the observer set');
    } else {
      await seen(events, (e) => isDropper(e) && e.action === 'enter' && e.at >= leave.at, 'the dropper to re-enter');
      await until(watched, (ms) => ms.some(isDropper), 'the dropper back in the observer set');
    }
  } else {
    await seen(states, (s) => s.current === 'disconnected', 'the dropper to be disconnected');
    await seen(states, (s) => s.current === 'connected', 'the dropper to reconnect');
    await sleep(args.holdMs ?? 0);
  }
  await sleep(150); // a last poll or two of the settled set
  polling = false;
  await poll;
  const keys = (await watched.presence.get()).map((m) => `${m.clientId}:${m.connectionId}`).sort();
  snapshots.push({ ev: 'members', keys, at: Date.now(), last: true });
  const result = {
    dropperId,
    dropperIdAfter: dropper.connection.id,
    dropperState: dropper.connection.state,
    events,
    snapshots,
    channelChanges,
    observerSees: (await watched.presence.get()).map(member),
    dropperSees: dropper.connection.state === 'connected' ? (await own.presence.get()).map(member) : null,
  };
  await settled(args.release);
  return result;
});
