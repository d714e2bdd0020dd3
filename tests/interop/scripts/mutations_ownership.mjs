// message-update-own: "me" holds a key limited to publish, subscribe, history and
// message-update-own. It may append to and update its own message but not another client's
// (40160), and may not delete even its own (no message-delete-* capability); over realtime and
// REST. The owner (full key) then appends to its own message.
import { args, errorInfo, realtime, rejection, rest, run } from '../lib/relay.mjs';

run(async () => {
  const owner = realtime({ clientId: 'owner' });
  const me = realtime({ clientId: 'me', key: args.limitedKey });
  const ownerCh = owner.channels.get(args.channel);
  const meCh = me.channels.get(args.channel);
  await ownerCh.attach();
  await meCh.attach();
  const meRest = rest({ clientId: 'me', key: args.limitedKey }).channels.get(args.channel);
  const theirs = (await ownerCh.publish({ name: 'm', data: 'owner:' })).serials[0];
  const mine = (await meCh.publish({ name: 'm', data: 'me:' })).serials[0];
  const out = {};
  for (const [via, target] of [['realtime', meCh], ['rest', meRest]]) {
    out[via] = {
      appendOwn: await rejection(target.appendMessage({ serial: mine, data: `${via}+` })),
      updateOwn: await rejection(target.updateMessage({ serial: mine, data: `me:${via}` })),
      appendOthers: await rejection(target.appendMessage({ serial: theirs, data: 'x' })),
      updateOthers: await rejection(target.updateMessage({ serial: theirs, data: 'x' })),
      deleteOwn: await rejection(target.deleteMessage({ serial: mine })),
    };
  }
  await ownerCh.appendMessage({ serial: theirs, data: 'ok' });
  let anonymous = null;
  try {
    const anon = rest({ key: args.limitedKey }).channels.get(args.channel);
    await anon.appendMessage({ serial: mine, data: '?' });
  } catch (err) {
    anonymous = errorInfo(err);
  }
  const readBack = rest().channels.get(args.channel);
  return {
    out,
    anonymous,
    mine: (await readBack.getMessage(mine)).data,
    theirs: (await readBack.getMessage(theirs)).data,
  };
});
