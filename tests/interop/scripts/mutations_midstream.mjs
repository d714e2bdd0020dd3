// A subscriber that attaches while a message is being streamed (create + appends) first gets
// message.update with the whole aggregate so far, then only the later fragments as
// message.append; its reconstruction equals the final message. A subscriber attached from the
// start gets the create and every fragment. Also: a rewind attach (params.rewind) and the
// aggregate a late attacher reads from history.
import { args, realtime, run, withTimeout } from '../lib/relay.mjs';

function recorder(channel) {
  const seen = [];
  let wake = null;
  const listener = (m) => {
    seen.push({ action: m.action, serial: m.serial, version: m.version?.serial ?? null, data: m.data, name: m.name ?? null });
    if (wake) wake();
  };
  const attached = channel.subscribe(listener);
  const until = (pred, what) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (pred(seen)) {
            wake = null;
            resolve(seen);
          }
        };
        wake = check;
        check();
      }),
      what,
    );
  return { seen, attached, until };
}

/** Apply deliveries the way a naive client would: create/update set, append concatenates. */
export function rebuild(seen) {
  const out = {};
  for (const m of seen) {
    if (m.action === 'message.append') out[m.serial] = (out[m.serial] ?? '') + m.data;
    else out[m.serial] = m.data;
  }
  return out;
}

run(async () => {
  const fragments = args.fragments;
  const writer = realtime();
  const ch = writer.channels.get(args.channel);
  await ch.attach();
  const early = recorder(realtime().channels.get(args.channel));
  await early.attached;

  const serial = (await ch.publish({ name: 'stream', data: fragments[0] })).serials[0];
  const cut = args.cut;
  for (const f of fragments.slice(1, cut)) await ch.appendMessage({ serial, data: f });

  const late = recorder(realtime().channels.get(args.channel));
  await late.attached;
  for (const f of fragments.slice(cut)) await ch.appendMessage({ serial, data: f });
  const full = fragments.join('');
  const done = (seen) => rebuild(seen)[serial] === full;
  await early.until(done, 'the early subscriber to rebuild the message');
  await late.until(done, 'the late subscriber to rebuild the message');

  // rewind=5 on a fresh client: the streamed message comes once, as its aggregate.
  const rewound = recorder(realtime().channels.get(args.channel, { params: { rewind: '5' } }));
  await rewound.attached;
  await rewound.until((seen) => seen.length >= 1, 'the rewind replay');
  await new Promise((r) => setTimeout(r, 200));

  return {
    serial,
    full,
    early: early.seen,
    late: late.seen,
    rewound: rewound.seen,
    history: (await ch.history()).items.map((m) => ({ action: m.action, serial: m.serial, data: m.data, version: m.version?.serial ?? null })),
  };
});
