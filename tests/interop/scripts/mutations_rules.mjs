// Mutable messages off: on args.locked (a namespace whose rules lack mutableMessages) update,
// delete and append fail with 93002 over realtime and REST, and the message is untouched;
// on args.open the same calls succeed.
import { args, realtime, rejection, rest, run } from '../lib/relay.mjs';

async function attempt(channelName) {
  const client = realtime();
  const ch = client.channels.get(channelName);
  await ch.attach();
  const restCh = rest().channels.get(channelName);
  const serial = (await ch.publish({ name: 'm', data: 'orig' })).serials[0];
  const out = {};
  for (const [via, target] of [['realtime', ch], ['rest', restCh]]) {
    out[via] = {
      append: await rejection(target.appendMessage({ serial, data: '+' })),
      update: await rejection(target.updateMessage({ serial, data: 'new' })),
      delete: await rejection(target.deleteMessage({ serial })),
    };
  }
  const after = await restCh.getMessage(serial);
  out.after = { data: after.data, action: after.action };
  return out;
}

run(async () => ({ locked: await attempt(args.locked), open: await attempt(args.open) }));
