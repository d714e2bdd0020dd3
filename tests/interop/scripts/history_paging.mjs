// Page through 7 messages two at a time, both directions, with REST and with a realtime channel.
import { args, connected, messageFields, pages, realtime, rest, run } from '../lib/relay.mjs';

const nameOnly = (m) => messageFields(m).name;

run(async () => {
  const client = realtime();
  await connected(client);
  const channel = client.channels.get(args.channel);
  await channel.attach();
  for (let i = 0; i < args.count; i++) await channel.publish(`m${i}`, `payload ${i}`);

  const restChannel = rest().channels.get(args.channel);
  const result = {};
  for (const direction of ['forwards', 'backwards']) {
    const params = { limit: args.limit, direction };
    result[`rest-${direction}`] = await pages(await restChannel.history(params), nameOnly);
    result[`realtime-${direction}`] = await pages(await channel.history(params), nameOnly);
  }
  // The default direction is backwards (newest first).
  result['rest-default'] = await pages(await restChannel.history({ limit: args.limit }), nameOnly);

  // first() from a later page goes back to the first page.
  const page1 = await restChannel.history({ limit: args.limit, direction: 'forwards' });
  const page2 = await page1.next();
  const again = await page2.first();
  result.firstAgain = again.items.map(nameOnly);
  return result;
});
