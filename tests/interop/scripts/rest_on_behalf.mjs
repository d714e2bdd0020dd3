// A REST publish with a realtime connection's connectionKey is attributed to that connection
// (TM2h): subscribers and history see its connectionId. A key of no live connection is refused.
import { args, collect, connected, messageFields, realtime, rejection, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime();
  await connected(client);
  const inbox = collect(client.channels.get(args.channel), 1);
  await inbox.attached;
  const restChannel = rest().channels.get(args.channel);
  await restChannel.publish({ name: 'foo', data: 'bar', connectionKey: client.connection.key });
  const [received] = await inbox.done;
  const history = await restChannel.history();
  const refused = await rejection(restChannel.publish({ name: 'x', connectionKey: 'nope!missing' }));
  return {
    connectionId: client.connection.id,
    received: messageFields(received),
    history: history.items.map(messageFields),
    refused,
  };
});
