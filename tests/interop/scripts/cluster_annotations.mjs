// Annotations of one message published through two nodes at once: watchers on each node receive
// every annotation and summaries that never go back, ending on the aggregate of all of them; the
// REST listing and history's summary agree on both nodes.
//
// args: channel, ports ([a, b]), perNode (annotators on each node).
import { args, connected, realtime, rest, run, withTimeout } from '../lib/relay.mjs';

const modes = ['publish', 'subscribe', 'annotation_publish', 'annotation_subscribe'];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function watch(port, who) {
  const client = realtime({ clientId: who, port });
  await connected(client);
  const channel = client.channels.get(args.channel, { modes });
  const seen = { messages: 0, summaries: [], annotations: [] };
  await channel.subscribe((m) => {
    if (m.action === 'message.summary') seen.summaries.push(m.annotations.summary);
    else seen.messages += 1;
  });
  await channel.annotations.subscribe((a) => seen.annotations.push(a.serial));
  return seen;
}

async function until(check, what) {
  await withTimeout(
    (async () => {
      while (!check()) await sleep(20);
    })(),
    what,
  );
}

run(async () => {
  const [a, b] = args.ports;
  const watchers = [await watch(a, 'watch-a'), await watch(b, 'watch-b')];
  const { serials } = await rest({ port: a }).channels.get(args.channel).publish({ name: 'post', data: 'hello' });
  const serial = serials[0];
  await until(() => watchers.every((w) => w.messages === 1), 'the message on both nodes');

  const total = 2 * args.perNode;
  const publishes = [];
  for (let i = 0; i < total; i += 1) {
    const channel = rest({ clientId: `u${i}`, port: i % 2 ? b : a }).channels.get(args.channel);
    publishes.push(channel.annotations.publish(serial, { type: 'reactions:distinct.v1', name: '👍' }));
    publishes.push(channel.annotations.publish(serial, { type: 'views:total.v1' }));
  }
  await Promise.all(publishes);
  const done = (w) => {
    const last = w.summaries.at(-1);
    return last?.['views:total.v1']?.total === total && last['reactions:distinct.v1']?.['👍']?.total === total;
  };
  await until(() => watchers.every(done), 'the final summary on both nodes');
  await until(() => watchers.every((w) => w.annotations.length === 2 * total), 'every annotation on both nodes');

  const out = { serial, watchers: [] };
  for (const [w, port] of [
    [watchers[0], a],
    [watchers[1], b],
  ]) {
    const channel = rest({ port }).channels.get(args.channel);
    const listed = (await channel.annotations.get(serial, { limit: 100 })).items.map((x) => x.serial);
    const history = (await channel.history()).items[0].annotations.summary;
    out.watchers.push({
      views: w.summaries.map((s) => s['views:total.v1']?.total ?? 0),
      last: w.summaries.at(-1),
      annotations: [...w.annotations].sort(),
      listed,
      history,
    });
  }
  return out;
});
