// extras.ephemeral: delivered live to subscribers, acknowledged, never in history.
import { args, collect, messageFields, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const writer = realtime();
  const reader = realtime();
  const ch = writer.channels.get(args.channel);
  const sub = collect(reader.channels.get(args.channel), 3);
  await sub.attached;
  const r1 = await ch.publish({ name: 'kept', data: 'one' });
  const r2 = await ch.publish({ name: 'typing', data: 'ephemeral', extras: { ephemeral: true } });
  const r3 = await ch.publish({ name: 'kept', data: 'two' });
  const live = (await sub.done).map(messageFields);
  const history = (await ch.history()).items.map(messageFields);
  return { acks: [r1.serials, r2.serials, r3.serials], live, history };
});
