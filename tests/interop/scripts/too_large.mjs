// A message over 65536 bytes is refused with 40009, over realtime and over REST, and the client
// keeps working afterwards.
import { args, connected, errorInfo, realtime, rejection, rest, run } from '../lib/relay.mjs';

const big = 'x'.repeat(70000);

run(async () => {
  const client = realtime();
  await connected(client);
  const channel = client.channels.get(args.channel);
  await channel.attach();

  // ably-js checks connectionDetails.maxMessageSize itself before sending (realtimechannel.ts).
  const realtimeError = await rejection(channel.publish('big', big));
  const afterRealtime = await channel.publish('small', 'fits');

  // Raise the REST client's own limit so the request reaches the relay, which must refuse it.
  const bigRest = rest({ maxMessageSize: 10 * 1024 * 1024 }).channels.get(args.channel);
  const restError = await rejection(bigRest.publish('big', big));
  const binaryError = await rejection(bigRest.publish('big-binary', Buffer.alloc(70000, 7)));
  const afterRest = await bigRest.publish('small-rest', 'fits');

  const history = await channel.history({ direction: 'forwards' });
  return {
    maxMessageSize: client.options.maxMessageSize ?? null,
    realtimeError,
    afterRealtime,
    restError,
    binaryError,
    afterRest,
    connectionState: client.connection.state,
    connectionError: errorInfo(client.connection.errorReason),
    history: history.items.map((m) => m.name),
  };
});
