// A wrong key secret fails the realtime connection with 40101 and REST requests with 40101/401.
import { args, errorInfo, key, realtime, rejection, rest, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const keyName = key.split(':')[0];
  const badKey = `${keyName}:${args.secret}`;

  const client = realtime({ key: badKey });
  const change = await withTimeout(
    new Promise((resolve) => {
      client.connection.on((c) => {
        if (c.current === 'failed' || c.current === 'disconnected' || c.current === 'connected') resolve(c);
      });
    }),
    'the connection to fail or connect',
  );

  const restClient = rest({ key: badKey });
  return {
    realtime: { state: change.current, reason: errorInfo(change.reason) },
    restHistory: await rejection(restClient.channels.get(args.channel).history()),
    restPublish: await rejection(restClient.channels.get(args.channel).publish('x', 'y')),
    // /time needs no credentials.
    restTime: typeof (await restClient.time()),
  };
});
