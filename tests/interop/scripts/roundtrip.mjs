// Publish on one connection, receive on another, then read the message back from history.
import { args, connected, collect, messageFields, once, realtime, run } from '../lib/relay.mjs';

run(async () => {
  const publisher = realtime({ clientId: 'alice' });
  const subscriber = realtime();
  await Promise.all([connected(publisher), connected(subscriber)]);

  const inbox = collect(subscriber.channels.get(args.channel), 1);
  await inbox.attached;
  const pubChannel = publisher.channels.get(args.channel);
  await pubChannel.attach();

  const published = await pubChannel.publish({
    name: 'greeting',
    data: 'hello relay',
    extras: { headers: { 'x-trace': 'abc', count: 2 } },
  });
  // The ACK has arrived when publish resolves, so the message is already in history.
  const history = await pubChannel.history({ direction: 'forwards' });
  const [received] = await inbox.done;

  const publisherConnectionId = publisher.connection.id;
  // connection.ping() sends a HEARTBEAT with an id and waits for the relay to echo it.
  const pingMs = await publisher.connection.ping();
  // close() sends CLOSE and waits for CLOSED.
  const closing = once(publisher.connection, 'closed', 5000, 'CLOSED after close()');
  publisher.close();
  await closing;

  return {
    pingMs,
    closedState: publisher.connection.state,
    publisherConnectionId,
    publishResult: published,
    attachSerial: pubChannel.properties.attachSerial ?? null,
    received: messageFields(received),
    history: history.items.map(messageFields),
  };
});
