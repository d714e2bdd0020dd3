// A publisher streaming through one relay node and a subscriber on another while the test stops
// and restarts PostgreSQL under them (tests/interop/test_interop_pg_restart.py).
//
// args: channel, pubPort, subPort, pauseMs (between publishes), release (a file: once the test
// creates it, the publisher stops). Each publish is sent once, awaited, and its outcome kept:
// ACKed, or NACKed with the error's code and statusCode. Progress: {ev:'ready'} once the
// subscriber is attached, {ev:'acked', n} and {ev:'nacked', n, code} as outcomes arrive.
// Once released, the publisher sends 'end' and the subscriber waits for it, so anything
// delivered twice or late would be seen before the script reports.
import { existsSync } from 'node:fs';
import { args, connected, errorInfo, realtime, run, untilEnd, withTimeout } from '../lib/relay.mjs';
import { event, sleep } from './presence_common.mjs';

run(async () => {
  const sub = realtime({ clientId: 'sub', port: args.subPort });
  sub.connection.on((change) => event({ ev: 'state', who: 'sub', current: change.current }));
  await connected(sub);
  const subChannel = sub.channels.get(args.channel);
  const { received, ended } = await untilEnd(subChannel);

  const pub = realtime({ clientId: 'pub', port: args.pubPort });
  pub.connection.on((change) => event({ ev: 'state', who: 'pub', current: change.current }));
  await connected(pub);
  const pubChannel = pub.channels.get(args.channel);
  await pubChannel.attach();
  event({ ev: 'ready' });

  const outcomes = [];
  let acked = 0;
  let nacked = 0;
  for (let i = 0; !existsSync(args.release); i += 1) {
    try {
      await pubChannel.publish(`m${i}`, String(i));
      acked += 1;
      outcomes.push({ name: `m${i}`, acked: true });
      event({ ev: 'acked', n: acked });
    } catch (err) {
      nacked += 1;
      const info = errorInfo(err);
      outcomes.push({ name: `m${i}`, acked: false, error: info });
      event({ ev: 'nacked', n: nacked, code: info.code });
    }
    await sleep(args.pauseMs ?? 20);
  }
  await pubChannel.publish('end', 'end');
  await withTimeout(ended, `the subscriber's end marker (received ${received.length})`);
  return { outcomes, received, states: [sub.connection.state, pub.connection.state] };
});
