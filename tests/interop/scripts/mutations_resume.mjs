// Resume replay: a subscriber sees message A created and appended to; then its socket is
// dropped by the relay (the test aborts the connection whose id the script writes to
// args.flagFile). While it is away A gets more fragments and B is created and appended to.
// After ably-js resumes (and A gets one more fragment live), its deliveries rebuild both messages exactly, with no fragment twice.
import { writeFileSync } from 'node:fs';

import { args, once, realtime, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const writer = realtime();
  const ch = writer.channels.get(args.channel);
  await ch.attach();
  const subClient = realtime();
  const subCh = subClient.channels.get(args.channel);
  const seen = [];
  await subCh.subscribe((m) => seen.push({ action: m.action, serial: m.serial, version: m.version?.serial ?? null, data: m.data }));
  const channelEvents = [];
  subCh.on((c) => channelEvents.push({ current: c.current, resumed: c.resumed }));

  const a = (await ch.publish({ name: 'a', data: 'A0' })).serials[0];
  await ch.appendMessage({ serial: a, data: '-A1' });
  await withTimeout((async () => { while (seen.length < 2) await new Promise((r) => setTimeout(r, 5)); })(), 'the first two deliveries');

  const idBefore = subClient.connection.id;
  const disconnected = once(subClient.connection, 'disconnected', 10000, 'the socket to drop');
  writeFileSync(args.flagFile, idBefore);
  await disconnected;
  const reconnected = once(subClient.connection, 'connected', 10000, 'the resume');
  // Published while the subscriber is away (its resume races these; either way it must
  // end up with each fragment once).
  const pending = [ch.appendMessage({ serial: a, data: '-A2' })];
  const b = (await ch.publish({ name: 'b', data: 'B0' })).serials[0];
  pending.push(ch.appendMessage({ serial: b, data: '-B1' }), ch.appendMessage({ serial: a, data: '-A3' }));
  pending.push(ch.appendMessage({ serial: b, data: '-B2' }));
  await Promise.all(pending);
  await reconnected;
  await withTimeout(
    (async () => {
      while (!channelEvents.some((e) => e.current === 'attached' && e.resumed)) await new Promise((r) => setTimeout(r, 5));
    })(),
    'the channel to re-attach resumed',
  );
  // After the resume: live changes to a message seen before the drop (A) and one created after.
  await ch.appendMessage({ serial: a, data: '-A4' });
  await ch.appendMessage({ serial: b, data: '-B3' });
  const rebuild = () => {
    const out = {};
    for (const m of seen) out[m.serial] = m.action === 'message.append' ? (out[m.serial] ?? '') + m.data : m.data;
    return out;
  };
  await withTimeout(
    (async () => {
      while (rebuild()[b] !== 'B0-B1-B2-B3' || rebuild()[a] !== 'A0-A1-A2-A3-A4') await new Promise((r) => setTimeout(r, 10));
    })(),
    'both messages rebuilt',
  ).catch(() => null);
  return { a, b, idBefore, idAfter: subClient.connection.id, seen, rebuilt: rebuild(), channelEvents };
});
