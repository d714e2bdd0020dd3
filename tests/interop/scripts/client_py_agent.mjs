// A Python agent (channel-relay's `client.turns.AgentSession`, run by the pytest test) answers
// an unmodified @ably/ai-transport client session. alice sends through the session's view; the
// Python agent picks the input up off the channel and streams the answer token by token.
// Reports what the JS side sees: the conversation, the run, the live deltas, errors.
import { clientSession, codec, conversation, recordDeltas, runStatus, runsOf, userMessage } from '../lib/ai.mjs';
import { args, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const deltas = recordDeltas(sender.session);
  const handle = await sender.session.view.send(codec.createUserMessage(userMessage(args.question)));
  await withTimeout(handle.started, 'the Python agent to start the run');
  const runId = handle.runId;
  await runStatus(sender.session, runId, ['complete', 'cancelled', 'error']);
  const messages = sender.session.view.getMessages();
  const assistant = messages[messages.length - 1].message;
  return {
    runId,
    status: handle.status,
    conversation: conversation(sender.session.view),
    runs: runsOf(sender.session.view),
    deltas: deltas[runId] || [],
    assistantParts: assistant.parts,
    errors: sender.errors,
  };
});
