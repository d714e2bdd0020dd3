// Presence fixtures of a sandbox app, as ably-js sees them through realtime (SYNC) and REST.
// Args: {channel}. Result: {realtime: [...], rest: [...]} members as {clientId, data, action}.
import { args, realtime, rest, run } from '../lib/relay.mjs';

const fields = (m) => ({ clientId: m.clientId, data: m.data ?? null, action: m.action, connectionId: m.connectionId });
const byClient = (a, b) => (a.clientId < b.clientId ? -1 : 1);

run(async () => {
  const client = realtime();
  const channel = client.channels.get(args.channel);
  await channel.attach();
  const live = await channel.presence.get();
  const page = await rest().channels.get(args.channel).presence.get();
  return { realtime: live.map(fields).sort(byClient), rest: page.items.map(fields).sort(byClient) };
});
