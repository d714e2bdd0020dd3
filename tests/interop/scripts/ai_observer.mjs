// (2) An observer: alice sends through her client session, the agent streams, and bob (another
// client session on the same channel, attached before the send) watches the input and every token
// arrive live. Reports both views, the deltas each tree saw, and bob's lifecycle events.
import {
  agentSession,
  clientSession,
  codec,
  conversation,
  recordDeltas,
  runStatus,
  runsOf,
  serve,
  tokenStream,
  tokenize,
  userMessage,
} from '../lib/ai.mjs';
import { args, run } from '../lib/relay.mjs';

run(async () => {
  const tokens = tokenize(args.answer);
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const observer = await clientSession(args.channel, { clientId: 'bob' });
  const agent = await agentSession(args.channel);
  const senderDeltas = recordDeltas(sender.session);
  const observerDeltas = recordDeltas(observer.session);
  const lifecycle = [];
  observer.session.tree.on('run', (e) => lifecycle.push({ type: e.type, runId: e.runId, clientId: e.clientId }));
  // When did bob first see the user's input, relative to the tokens?
  const seen = [];
  observer.session.tree.on('output', (e) => {
    if (e.inputs && e.inputs.length) seen.push('input');
    if (e.events.some((o) => o.type === 'text-delta')) seen.push('token');
  });

  const handle = await sender.session.view.send(codec.createUserMessage(userMessage(args.question)));
  const served = serve(agent, handle.toInvocation().toJSON(), {
    source: (r) => tokenStream(tokens, { delayMs: 5, signal: r.abortSignal }),
  });
  await handle.started;
  const outcome = await served;
  await runStatus(sender.session, handle.runId, ['complete', 'cancelled', 'error']);
  await runStatus(observer.session, handle.runId, ['complete', 'cancelled', 'error']);
  return {
    tokens,
    runId: handle.runId,
    inputCodecMessageId: handle.inputCodecMessageId,
    outcome,
    handleStatus: handle.status,
    sender: { conversation: conversation(sender.session.view), runs: runsOf(sender.session.view), deltas: senderDeltas[handle.runId] || [] },
    observer: {
      conversation: conversation(observer.session.view),
      runs: runsOf(observer.session.view),
      deltas: observerDeltas[handle.runId] || [],
      lifecycle,
      firstSeen: seen[0] || null,
      ownerOfInput: observer.session.view.runOf(handle.inputCodecMessageId)?.clientId ?? null,
    },
    errors: [...sender.errors, ...observer.errors, ...agent.errors],
  };
});
