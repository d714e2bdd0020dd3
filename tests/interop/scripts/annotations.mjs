// Message annotations through ably-js 2.28: realtime and REST publishes, delivery to
// annotation_subscribe connections, the message.summary each one produces (every aggregation
// Ably offers), listing, and the refusals.
import { args, connected, realtime, rejection, rest, run, withTimeout } from '../lib/relay.mjs';

const modes = ['publish', 'subscribe', 'annotation_publish', 'annotation_subscribe'];

function collector(subscribe, what) {
  const items = [];
  const waiters = [];
  subscribe((item) => {
    items.push(item);
    for (const waiter of waiters.splice(0)) waiter();
  });
  return {
    items,
    async count(n) {
      while (items.length < n) {
        await withTimeout(new Promise((resolve) => waiters.push(resolve)), `${n} ${what}`);
      }
      return items.slice(0, n);
    },
  };
}

run(async () => {
  const ann = realtime({ clientId: 'ann' });
  const bob = realtime({ clientId: 'bob' });
  const plain = realtime({ clientId: 'carl' });
  await Promise.all([connected(ann), connected(bob), connected(plain)]);
  const annChannel = ann.channels.get(args.channel, { modes });
  const bobChannel = bob.channels.get(args.channel, { modes });
  const plainChannel = plain.channels.get(args.channel);
  await Promise.all([annChannel.attach(), bobChannel.attach(), plainChannel.attach()]);

  const summaries = collector((l) => plainChannel.subscribe((m) => m.action === 'message.summary' && l(m)), 'summaries');
  const seenByBob = collector((l) => bobChannel.annotations.subscribe(l), 'annotations');
  const seenByPlain = [];
  // A subscription to the message's name sees its summaries too (they carry the name).
  const summariesByName = [];
  plainChannel.subscribe('post', (m) => m.action === 'message.summary' && summariesByName.push(m.serial));
  plainChannel.annotations.subscribe((a) => seenByPlain.push(a)).catch(() => {});

  const { serials } = await annChannel.publish('post', 'hello');
  const serial = serials[0];
  const restAnn = rest({ clientId: 'ann' }).channels.get(args.channel);
  const restDan = rest({ clientId: 'dan' }).channels.get(args.channel);

  await annChannel.annotations.publish(serial, { type: 'reactions:distinct.v1', name: '👍' });
  await bobChannel.annotations.publish(serial, { type: 'reactions:distinct.v1', name: '👍' });
  await bobChannel.annotations.publish(serial, { type: 'reactions:distinct.v1', name: '🎉' });
  await annChannel.annotations.publish(serial, { type: 'votes:unique.v1', name: 'yes' });
  await annChannel.annotations.publish(serial, { type: 'votes:unique.v1', name: 'no' });
  await restDan.annotations.publish(serial, { type: 'votes:unique.v1', name: 'no' });
  await restAnn.annotations.publish(serial, { type: 'likes:multiple.v1', name: 'clap', count: 3 });
  await bobChannel.annotations.publish(serial, { type: 'likes:multiple.v1', name: 'clap' });
  await annChannel.annotations.publish(serial, { type: 'read:flag.v1' });
  await bobChannel.annotations.publish(serial, { type: 'read:flag.v1' });
  await bobChannel.annotations.delete(serial, { type: 'read:flag.v1' });
  await annChannel.annotations.publish(serial, { type: 'views:total.v1' });
  await bobChannel.annotations.publish(serial, { type: 'views:total.v1' });
  await bobChannel.annotations.delete(serial, { type: 'reactions:distinct.v1', name: '🎉' });

  const published = 14;
  const all = await summaries.count(published);
  const last = all[published - 1];
  const bobSaw = await seenByBob.count(published);

  const history = await restAnn.history();
  const fetched = await restAnn.getMessage(serial);
  const first = await annChannel.annotations.get(serial, { limit: 10 });
  const second = await first.next();

  const errors = {
    noSuchMessage: await rejection(
      annChannel.annotations.publish(`${serial.split('-')[0]}-9999999999999999`, { type: 'x:total.v1' }),
    ),
    badType: await rejection(annChannel.annotations.publish(serial, { type: 'reactions:sum.v1', name: 'a' })),
    anonymous: await rejection(
      rest().channels.get(args.channel).annotations.publish(serial, { type: 'reactions:distinct.v1', name: 'a' }),
    ),
  };

  return {
    serial,
    summaryActions: [...new Set(all.map((m) => m.action))],
    summarySerials: [...new Set(all.map((m) => m.serial))],
    summaryNames: [...new Set(all.map((m) => m.name ?? null))],
    summariesByName: summariesByName.length === all.length,
    summary: last.annotations.summary,
    historySummary: history.items.find((m) => m.serial === serial)?.annotations?.summary ?? null,
    fetchedSummary: fetched.annotations?.summary ?? null,
    bobSaw: bobSaw.map((a) => ({
      action: a.action,
      type: a.type,
      name: a.name ?? null,
      clientId: a.clientId,
      messageSerial: a.messageSerial,
      serial: a.serial,
    })),
    plainSawAnnotations: seenByPlain.length,
    pages: [first.items.length, second.items.length, first.hasNext(), second.hasNext()],
    listedSerials: [...first.items, ...second.items].map((a) => a.serial),
    errors,
  };
});
