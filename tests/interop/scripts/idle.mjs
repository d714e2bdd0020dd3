// A connection with no traffic stays connected: the relay shows activity within maxIdleInterval
// (ws pings for node's heartbeats=false, HEARTBEAT messages for heartbeats=true).
import { args, connected, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime({
    // ably-js gives up after maxIdleInterval + realtimeRequestTimeout without activity.
    realtimeRequestTimeout: 1000,
    transportParams: args.heartbeats ? { heartbeats: 'true' } : {},
  });
  await connected(client);
  const id = client.connection.id;
  const changes = [];
  client.connection.on((change) => changes.push(change.current));
  // Idling is the behaviour under test, so this wait is the test, not a synchronisation.
  await new Promise((resolve) => setTimeout(resolve, args.idleMs));
  return { changes: [...changes], state: client.connection.state, sameConnection: client.connection.id === id };
});
