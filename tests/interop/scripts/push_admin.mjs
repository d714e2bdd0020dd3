// The push admin API and the Push plugin through ably-js 2.28: device registrations, channel
// subscriptions, activation, push.admin.publish and extras.push on a channel message. The
// devices use Ably's ablyChannel transport, so each notification arrives as `__ably_push__`.
import PushPlugin from 'ably/push';
import { enableChannelPush } from '../lib/push.mjs';
import { args, connected, realtime, rejection, rest, run, withTimeout } from '../lib/relay.mjs';

function android(id, clientId) {
  return {
    id,
    clientId,
    deviceSecret: `secret-${id}`,
    platform: 'android',
    formFactor: 'phone',
    push: { recipient: { transportType: 'gcm', registrationToken: `token-${id}` } },
  };
}

function plain(value) {
  return JSON.parse(JSON.stringify(value));
}

function nextPush(channel) {
  return withTimeout(
    new Promise((resolve) => {
      channel.subscribe('__ably_push__', (message) => resolve(JSON.parse(message.data)));
    }),
    `__ably_push__ on ${channel.name}`,
  );
}

run(async () => {
  enableChannelPush();
  const admin = rest().push.admin;
  const out = {};

  // Device registrations.
  out.saved = plain(await admin.deviceRegistrations.save(android('dev-1', 'alice')));
  await admin.deviceRegistrations.save(android('dev-2', 'alice'));
  await admin.deviceRegistrations.save(android('dev-3', 'bob'));
  out.got = plain(await admin.deviceRegistrations.get('dev-1'));
  out.all = (await admin.deviceRegistrations.list(null)).items.map((d) => d.id);
  out.alices = (await admin.deviceRegistrations.list({ clientId: 'alice' })).items.map((d) => d.id);
  out.firstPage = (await admin.deviceRegistrations.list({ limit: 2 })).items.map((d) => d.id);
  await admin.deviceRegistrations.remove('dev-3');
  out.removedGet = await rejection(admin.deviceRegistrations.get('dev-3'));
  out.badPlatform = await rejection(
    admin.deviceRegistrations.save({ ...android('dev-x'), platform: 'not_a_real_platform' }),
  );

  // Channel subscriptions.
  const subs = admin.channelSubscriptions;
  await subs.save({ channel: `${args.channel}:a`, clientId: 'alice' });
  await subs.save({ channel: `${args.channel}:a`, deviceId: 'dev-2' });
  await subs.save({ channel: `${args.channel}:b`, clientId: 'carol' });
  out.subsA = plain((await subs.list({ channel: `${args.channel}:a` })).items);
  out.channels = (await subs.listChannels(null)).items;
  await subs.remove({ channel: `${args.channel}:b`, clientId: 'carol' });
  out.channelsAfter = (await subs.listChannels(null)).items;
  await admin.deviceRegistrations.removeWhere({ clientId: 'alice' });
  out.afterRemoveWhere = (await admin.deviceRegistrations.list(null)).items.map((d) => d.id);
  out.subsAfterRemoveWhere = plain((await subs.list({ channel: `${args.channel}:a` })).items);

  // Activation through the Push plugin, then notifications to the device.
  const inboxName = `${args.channel}-inbox`;
  const device = rest({ clientId: 'dora', pushRecipientChannel: inboxName, plugins: { Push: PushPlugin } });
  await device.push.activate();
  out.activatedToken = typeof device.device().deviceIdentityToken;
  const pushChannel = device.channels.get(`${args.channel}:news`);
  await pushChannel.push.subscribeDevice();
  await pushChannel.push.subscribeClient();
  out.ownSubscriptions = plain((await pushChannel.push.listSubscriptions()).items);

  const watcher = realtime();
  await connected(watcher);
  const inbox = watcher.channels.get(inboxName);
  await inbox.attach();

  const payload = { notification: { title: 'Hello', body: 'From admin' }, data: { n: '1' } };
  let arrived = nextPush(inbox);
  await admin.publish({ deviceId: device.device().id }, payload);
  out.direct = await arrived;

  arrived = nextPush(inbox);
  await admin.publish({ clientId: 'dora' }, { notification: { title: 'By clientId' } });
  out.byClientId = await arrived;

  arrived = nextPush(inbox);
  const news = { notification: { title: 'News', body: 'Channel push' }, data: { id: '7' } };
  await rest().channels.get(`${args.channel}:news`).publish({ name: 'story', data: 'x', extras: { push: news } });
  out.fromChannel = await arrived;

  await pushChannel.push.unsubscribeDevice();
  await pushChannel.push.unsubscribeClient();
  out.ownAfterUnsubscribe = plain((await pushChannel.push.listSubscriptions()).items);
  out.deviceId = device.device().id;

  const recorded = await rest().request('get', '/push/notifications', 3, { deviceId: device.device().id });
  out.recorded = recorded.items;
  return out;
});
