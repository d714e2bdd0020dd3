// A late joiner: while a publisher keeps streaming, a second client attaches, subscribes and
// pages history({untilAttach: true, limit: 5}) to the end; history + live must be the stream.
// args: channel, count (total published), joinAfter (acked publishes before the join), inFlight.
import { args, connected, realtime, run, withTimeout } from '../lib/relay.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async () => {
  const publisher = realtime({ clientId: 'pub' });
  await connected(publisher);
  const pubChannel = publisher.channels.get(args.channel);
  let acked = 0;
  let joined;
  const joinedPromise = new Promise((resolve) => {
    joined = resolve;
  });
  const publishing = (async () => {
    const inFlight = args.inFlight ?? 5;
    for (let start = 0; start < args.count; start += inFlight) {
      const window = [];
      for (let i = start; i < Math.min(start + inFlight, args.count); i += 1) {
        window.push(pubChannel.publish(`m${i}`, String(i)));
      }
      await Promise.all(window);
      acked += window.length;
      if (acked >= args.joinAfter) joined();
      await sleep(5);
    }
    await pubChannel.publish('end', 'end');
  })();

  await withTimeout(joinedPromise, 'the first publishes');
  const late = realtime({ clientId: 'late' });
  await connected(late);
  const channel = late.channels.get(args.channel);
  const live = [];
  let ended;
  const endPromise = new Promise((resolve) => {
    ended = resolve;
  });
  await channel.subscribe((message) => {
    if (message.name === 'end') ended();
    else live.push(message.name);
  });
  const attachSerial = channel.properties.attachSerial ?? null;
  const ackedAtAttach = acked;

  const history = [];
  let pages = 0;
  let page = await channel.history({ untilAttach: true, limit: 5 });
  for (;;) {
    pages += 1;
    history.push(...page.items.map((m) => m.name));
    if (!page.hasNext()) break;
    page = await page.next();
  }
  await publishing;
  await withTimeout(endPromise, 'the end marker');
  return { history: history.reverse(), live, pages, attachSerial, ackedAtAttach, liveAtHistoryEnd: null };
});
