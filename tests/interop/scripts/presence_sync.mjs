// One anonymous key connection enters args.count members with enterClient; then late joiners,
// one per wire format, attach and must get the whole set through SYNC (presence.get() and the
// 'present' events a subscriber receives for members it meets in the sync).
//
// args: channel, count, release (file the test creates once it has looked at the relay).
// Result: entererId, late {format: {members, presentEvents, actions}}.
import { args, connected, realtime, run } from '../lib/relay.mjs';
import { canonical, member, seen, settled, until } from './presence_common.mjs';

run(async () => {
  const enterer = realtime();
  await connected(enterer);
  const channel = enterer.channels.get(args.channel);
  await channel.attach();
  await Promise.all(
    Array.from({ length: args.count }, (_, i) => channel.presence.enterClient(`member-${String(i).padStart(3, '0')}`, { i })),
  );
  await until(channel, (ms) => ms.length === args.count, `the enterer to see ${args.count} members`);

  const late = {};
  for (const format of ['msgpack', 'json']) {
    const client = realtime({ format, clientId: `late-${format}` });
    await connected(client);
    const lateChannel = client.channels.get(args.channel);
    const events = [];
    await lateChannel.presence.subscribe((p) => events.push(member(p)));
    const members = (await lateChannel.presence.get()).map(member);
    await seen(events, () => events.length >= args.count, `${format} late joiner to get ${args.count} present events`);
    late[format] = {
      members: canonical(members),
      presentEvents: events.length,
      actions: [...new Set(events.map((e) => e.action))],
    };
  }
  await settled(args.release);
  return { entererId: enterer.connection.id, late };
});
