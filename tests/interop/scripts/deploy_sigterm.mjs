// A live subscriber and publisher while the relay is stopped with SIGTERM and started again.
// The publisher publishes args.count messages one after another (printing "PROGRESS <n>" after
// each ACK so pytest knows when to stop the relay); the subscriber must end with every one, in
// order, once. RELAY_ARGS: {channel, count, gapMs}.
import { run, realtime, connected, collect, args, withTimeout } from '../lib/relay.mjs';

const { channel: name, count, gapMs } = args;
// Reconnect quickly once the relay is back (the default waits 15 s between attempts).
const options = { disconnectedRetryTimeout: 500 };

run(async () => {
  const subscriber = realtime(options);
  const publisher = realtime(options);
  await Promise.all([connected(subscriber), connected(publisher)]);
  const connectionChanges = [];
  subscriber.connection.on((change) => {
    connectionChanges.push({ state: change.current, code: change.reason?.code ?? null });
  });
  const sub = subscriber.channels.get(name);
  const channelChanges = [];
  sub.on((change) => channelChanges.push({ state: change.current, resumed: change.resumed, code: change.reason?.code ?? null }));
  const got = collect(sub, count);
  await got.attached;
  const pub = publisher.channels.get(name);
  const failed = [];
  for (let i = 0; i < count; i += 1) {
    try {
      await pub.publish('n', String(i));
    } catch (err) {
      failed.push({ i, code: err.code ?? null });
    }
    process.stdout.write(`PROGRESS ${i + 1}\n`);
    if (gapMs) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  try {
    await withTimeout(got.done, `${count} messages`, args.waitMs ?? 20000);
  } catch (err) {
    // Report what did arrive: pytest shows which messages are missing.
    process.stderr.write(`${err}\n`);
  }
  // Anything delivered twice would arrive right behind: wait a little before looking.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const messages = got.received;
  return {
    received: messages.map((m) => m.data),
    serialsIncreasing: messages.every((m, i) => i === 0 || m.serial > messages[i - 1].serial),
    failed,
    connectionChanges,
    channelChanges,
  };
});
