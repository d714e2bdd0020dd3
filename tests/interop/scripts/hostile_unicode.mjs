// A lone surrogate (a JavaScript string can hold one; JSON.stringify spells it as an escape)
// in a channel name or a message name is refused on its scope, 40010 or 40016, and the
// connection carries on.
import { args, connected, realtime, rejection, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime({ format: 'json' });
  await connected(client);
  const attachError = await rejection(client.channels.get('a\udfffb').attach());
  const channel = client.channels.get(args.channel);
  await channel.attach();
  const nameError = await rejection(channel.publish('a\udfffb', 'x'));
  await channel.publish('after', 'x');
  const history = await channel.history();
  return {
    attachError,
    nameError,
    history: history.items.map((m) => m.name),
    state: client.connection.state,
  };
});
