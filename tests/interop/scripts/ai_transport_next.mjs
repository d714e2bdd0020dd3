// What AI Transport 1.0 asks of the service beyond 0.8.0, through ably-js: a realtime republish
// with the same client-supplied ids is ACKed with the original serials and stored once;
// `params.rewind` set to a serial replays every message after it, then goes live; the REST
// `ephemeral` publish param delivers without storing; a realtime publish needs no attach.
import { args, collect, connected, messageFields, realtime, rest, run } from '../lib/relay.mjs';

run(async () => {
  const agent = realtime();
  const watcher = realtime();
  await Promise.all([connected(agent), connected(watcher)]);
  // Six messages reach the watcher: the two input parts once, 'second', 'third', the REST
  // ephemeral one and 'live'; the republished input never arrives.
  const inbox = collect(watcher.channels.get(args.channel), 6);
  await inbox.attached;

  const channel = agent.channels.get(args.channel);
  const input = [
    { id: 'turn-1:0', name: 'ai-input', data: 'part one' },
    { id: 'turn-1:1', name: 'ai-input', data: 'part two' },
  ];
  const first = await channel.publish(input);
  const again = await channel.publish(input);
  const agentStateAfterPublish = channel.state;
  const second = await channel.publish('ai-output', 'second');
  await channel.publish('ai-output', 'third');

  const restChannel = rest().channels.get(args.channel);
  const ephemeral = await restChannel.publish({ name: 'ai-status', data: 'thinking' }, { ephemeral: true });

  // A client that holds everything up to `second` reloads: it rewinds to that serial.
  const reloader = realtime();
  const rewound = reloader.channels.get(args.channel, { params: { rewind: second.serials[0] } });
  const reloaded = collect(rewound, 2);
  await reloaded.attached;
  await channel.publish('ai-output', 'live');
  await reloaded.done;
  await inbox.done;

  const history = await restChannel.history({ direction: 'forwards' });
  return {
    first: first.serials,
    again: again.serials,
    agentStateAfterPublish,
    ephemeral,
    watcher: inbox.received.map(messageFields),
    reloaded: reloaded.received.map(messageFields),
    history: history.items.map(messageFields),
  };
});
