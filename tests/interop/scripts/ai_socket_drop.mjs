// (8) The socket dropped mid-stream: once `dropAt` tokens are out, the script writes alice's
// connection id to `args.flagFile`; the test then aborts that connection's TCP socket on the relay
// side. The agent goes on streaming (a burst while alice is away, then paced); alice's ably-js
// resumes the connection and its channel, and her view must hold the exact text with every token
// once.
import { writeFileSync } from 'node:fs';

import {
  agentSession,
  clientSession,
  codec,
  conversation,
  recordDeltas,
  runStatus,
  runsOf,
  serve,
  sleep,
  tokenStream,
  tokenize,
  userMessage,
} from '../lib/ai.mjs';
import { args, once, run } from '../lib/relay.mjs';

run(async () => {
  const tokens = tokenize(args.answer);
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const agent = await agentSession(args.channel);
  const deltas = recordDeltas(sender.session);
  const states = [];
  sender.client.connection.on((change) => states.push(change.current));
  const channelEvents = [];
  sender.client.channels.get(args.channel).on((change) => {
    channelEvents.push({ current: change.current, resumed: change.resumed, reason: change.reason?.code ?? null });
  });
  const idBefore = sender.client.connection.id;
  let reconnected = null;
  let away = false;
  let duringGap = 0;
  sender.client.connection.on('connected', () => {
    away = false;
  });

  const onToken = async (k) => {
    if (k !== args.dropAt) return;
    const disconnected = once(sender.client.connection, 'disconnected', 10000, 'alice to lose her socket');
    writeFileSync(args.flagFile, sender.client.connection.id);
    await disconnected;
    away = true;
    reconnected = once(sender.client.connection, 'connected', 10000, 'alice to reconnect');
  };
  const handle = await sender.session.view.send(codec.createUserMessage(userMessage(args.question)));
  const served = serve(agent, handle.toInvocation().toJSON(), {
    source: (r) => tokenStream(tokens, { delayMs: 0, onToken: async (k) => {
      await onToken(k);
      if (away) duringGap += 1;
      if (k > args.dropAt + 4) await sleep(5);
    }, signal: r.abortSignal }),
  });
  await handle.started;
  const outcome = await served;
  if (reconnected) await reconnected;
  await runStatus(sender.session, handle.runId, ['complete', 'cancelled', 'error']);
  return {
    tokens,
    outcome,
    idBefore,
    duringGap,
    idAfter: sender.client.connection.id,
    states,
    channelEvents,
    deltas: deltas[handle.runId] || [],
    conversation: conversation(sender.session.view),
    runs: runsOf(sender.session.view),
    errors: [...sender.errors, ...agent.errors],
  };
});
