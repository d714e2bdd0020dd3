// The hot path: args.streams messages streamed concurrently, each with args.appends appends
// (all appends of a round in flight at once, from args.writers connections). A separate
// subscriber rebuilds every message; REST getMessage agrees. Reports the append rate.
import { args, realtime, rest, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const { streams, appends, writers: writerCount } = args;
  const writers = Array.from({ length: writerCount }, () => realtime().channels.get(args.channel));
  await Promise.all(writers.map((w) => w.attach()));
  const reader = realtime().channels.get(args.channel);
  const rebuilt = {};
  const lastVersion = {};
  let appendsSeen = 0;
  let nonIncreasing = 0;
  let others = 0;
  await reader.subscribe((m) => {
    if (m.action === 'message.create') rebuilt[m.serial] = m.data;
    else if (m.action === 'message.append') {
      appendsSeen += 1;
      if (lastVersion[m.serial] !== undefined && !(m.version.serial > lastVersion[m.serial])) nonIncreasing += 1;
      lastVersion[m.serial] = m.version.serial;
      rebuilt[m.serial] = (rebuilt[m.serial] ?? '') + m.data;
    } else others += 1;
  });
  const serials = await Promise.all(
    Array.from({ length: streams }, async (_, i) => (await writers[i % writerCount].publish({ name: `s${i}`, data: `[${i}]` })).serials[0]),
  );
  const started = Date.now();
  for (let k = 0; k < appends; k += 1) {
    await Promise.all(serials.map((serial, i) => writers[i % writerCount].appendMessage({ serial, data: ` t${k}` })));
  }
  const elapsedMs = Date.now() - started;
  const expected = (i) => `[${i}]` + Array.from({ length: appends }, (_, k) => ` t${k}`).join('');
  await withTimeout(
    (async () => {
      while (appendsSeen < streams * appends) await new Promise((r) => setTimeout(r, 20));
    })(),
    `${streams * appends} appends at the subscriber`,
  ).catch(() => null);
  const wrong = serials.filter((s, i) => rebuilt[s] !== expected(i)).length;
  const restCh = rest().channels.get(args.channel);
  const sample = [0, Math.floor(streams / 2), streams - 1];
  const stored = await Promise.all(sample.map(async (i) => ({ ok: (await restCh.getMessage(serials[i])).data === expected(i) })));
  return {
    appendsSeen,
    wrong,
    nonIncreasing,
    others,
    stored,
    elapsedMs,
    appendsPerSecond: Math.round((streams * appends * 1000) / Math.max(elapsedMs, 1)),
  };
});
