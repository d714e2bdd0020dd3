// Push state shared by the nodes of a cluster: a device registered and subscribed through node A
// is listed through node B, and a channel message with extras.push and push.admin.publish sent
// through B reach it. The device uses Ably's ablyChannel transport, so each notification arrives
// as `__ably_push__` on its inbox channel, watched here through node C.
//
// args: channel, ports ([a, b, c]).
import { args, connected, key, realtime, rest, run, withTimeout } from '../lib/relay.mjs';

function nextPush(channel) {
  return withTimeout(
    new Promise((resolve) => {
      channel.subscribe('__ably_push__', (message) => resolve(JSON.parse(message.data)));
    }),
    `__ably_push__ on ${channel.name}`,
  );
}

run(async () => {
  const [a, b, c] = args.ports;
  const inboxName = `${args.channel}-inbox`;
  const out = {};
  await rest({ port: a }).push.admin.deviceRegistrations.save({
    id: 'dev-cluster',
    clientId: 'eve',
    deviceSecret: 'secret-cluster',
    platform: 'browser',
    formFactor: 'desktop',
    push: {
      recipient: { transportType: 'ablyChannel', channel: inboxName, ablyKey: key, ablyUrl: 'http://localhost' },
    },
  });
  await rest({ port: a }).push.admin.channelSubscriptions.save({ channel: args.channel, deviceId: 'dev-cluster' });
  const adminB = rest({ port: b }).push.admin;
  out.listedOnB = (await adminB.deviceRegistrations.list(null)).items.map((d) => d.id);
  out.subscribedOnB = (await adminB.channelSubscriptions.list({ channel: args.channel })).items.map((s) => s.deviceId);

  const watcher = realtime({ port: c });
  await connected(watcher);
  const inbox = watcher.channels.get(inboxName);
  await inbox.attach();

  let arrived = nextPush(inbox);
  await rest({ port: b })
    .channels.get(args.channel)
    .publish({ name: 'news', data: 'x', extras: { push: { notification: { title: 'Channel via B' } } } });
  out.fromChannel = await arrived;

  arrived = nextPush(inbox);
  await adminB.publish({ deviceId: 'dev-cluster' }, { notification: { title: 'Direct via B' } });
  out.direct = await arrived;
  return out;
});
