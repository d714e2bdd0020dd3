// The inspector's live tail (tests/interop/test_interop_inspector.py): ably-js publishes a JSON
// message, a text message and a binary one, appends to and updates the text message, and deletes
// another, so the page has every kind of payload and message action to show.
import { args, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime({ clientId: 'publisher' });
  const channel = client.channels.get(args.channel);
  await channel.attach();
  await channel.publish('greeting', { hello: 'world', count: 3 });
  await channel.publish('bytes', Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  const { serials } = await channel.publish('story', 'Once');
  await channel.appendMessage({ serial: serials[0], data: ' upon a time' });
  await channel.updateMessage({ serial: serials[0], name: 'story', data: 'Once upon a time, edited' });
  const doomed = await channel.publish('doomed', 'about to go');
  await channel.deleteMessage({ serial: doomed.serials[0] });
  return { serial: serials[0] };
});
