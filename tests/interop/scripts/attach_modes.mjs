// Channel modes and params on attach, as ably-js's realtime/channel suite checks them:
// params.modes wins over the mode flags, the granted modes come back (channel.modes) and are
// enforced (40165), the default set is Ably's, and only params Ably knows are echoed.
//
// args: channel (a prefix).
// Result: per channel, {modes, params, publish, enter} (publish/enter: ErrorInfo or {resolved});
// receivedWithoutSubscribe / presenceWithoutSubscribe: what reached channels attached without
// those modes by the time a later marker arrived.
import { args, connected, realtime, rejection, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const client = realtime({ clientId: 'modes' });
  const other = realtime({ clientId: 'other' });
  await Promise.all([client, other].map(connected));

  const tryAll = async (channel) => {
    await channel.attach();
    return {
      modes: channel.modes ?? null,
      params: channel.params ?? null,
      publish: await rejection(channel.publish('p', 'x')),
      enter: await rejection(channel.presence.enter('here')),
    };
  };

  const out = {};
  out.paramsModes = await tryAll(client.channels.get(`${args.channel}:params`, { params: { modes: 'subscribe' } }));
  out.paramsWin = await tryAll(
    client.channels.get(`${args.channel}:both`, {
      params: { modes: 'presence,subscribe' },
      modes: ['publish', 'presence_subscribe'],
    }),
  );
  out.flagModes = await tryAll(client.channels.get(`${args.channel}:flags`, { modes: ['publish', 'presence_subscribe'] }));
  out.defaults = await tryAll(client.channels.get(`${args.channel}:defaults`, { params: { nonexistent: 'foo' } }));

  // The channel attached without SUBSCRIBE (flagModes) gets no messages, and the one without
  // PRESENCE_SUBSCRIBE (paramsModes) no presence: a marker published after them on a channel
  // that does subscribe arrives first and alone.
  const received = [];
  const presence = [];
  client.channels.get(`${args.channel}:flags`).subscribe((m) => received.push(m.name));
  client.channels.get(`${args.channel}:params`).presence.subscribe((m) => presence.push(m.clientId));
  let markerArrived;
  const marker = new Promise((resolve) => {
    markerArrived = resolve;
  });
  await client.channels.get(`${args.channel}:defaults`).subscribe('marker', () => markerArrived());
  await other.channels.get(`${args.channel}:flags`).publish('unseen', 'x');
  await other.channels.get(`${args.channel}:params`).presence.enter('unseen');
  await other.channels.get(`${args.channel}:defaults`).publish('marker', 'x');
  await withTimeout(marker, 'the marker message');
  out.receivedWithoutSubscribe = received;
  out.presenceWithoutSubscribe = presence;
  return out;
});
