// Invalid channel names are refused with 40010 on that channel only; the connection survives.
import { args, connected, errorInfo, realtime, rejection, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime();
  await connected(client);
  const result = { realtime: {}, rest: {} };
  for (const name of args.names) {
    const channel = client.channels.get(name);
    const error = await rejection(channel.attach());
    result.realtime[name] = { error, state: channel.state, reason: errorInfo(channel.errorReason) };
  }
  const good = client.channels.get(args.good);
  await good.attach();
  result.goodPublish = await good.publish('still', 'works');
  result.connectionState = client.connection.state;

  const restClient = rest();
  for (const name of args.names) {
    result.rest[name] = {
      publish: await rejection(restClient.channels.get(name).publish('x', 'y')),
      history: await rejection(restClient.channels.get(name).history()),
    };
  }
  return result;
});
