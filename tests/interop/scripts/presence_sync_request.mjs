// A client's presence SYNC request (channel.sync(), action 16) is answered with the member set,
// as ably-js's realtime/presence leave_published_for_member_missing_from_sync relies on: a
// member the client holds but the relay does not is then reported as having left.
//
// args: channel.
// Result: {before, leftEvent, after, channelState}.
import { Ably, args, connected, realtime, run, withTimeout } from '../lib/relay.mjs';

const createPM = Ably.makeProtocolMessageFromDeserialized();

run(async () => {
  const member = realtime({ clientId: 'continuous' });
  const watcher = realtime();
  await Promise.all([member, watcher].map(connected));
  await member.channels.get(args.channel).presence.enter();
  const channel = watcher.channels.get(args.channel);
  await channel.attach();
  await channel.presence.get({ waitForSync: true });

  // A member only this client believes in (ably-js's own test injects it the same way).
  await channel.processMessage(
    createPM({
      action: 14,
      id: 'messageid:0',
      connectionId: 'connid',
      timestamp: Date.now(),
      presence: [{ clientId: 'gone', action: 2 }],
    }),
  );
  const before = (await channel.presence.get()).map((m) => m.clientId).sort();
  const left = new Promise((resolve) => {
    channel.presence.subscribe('leave', (m) => resolve(m.clientId));
  });
  channel.sync();
  const leftEvent = await withTimeout(left, 'the leave of the member missing from the SYNC');
  const after = (await channel.presence.get({ waitForSync: true })).map((m) => m.clientId);
  return { before, leftEvent, after, channelState: channel.state };
});
