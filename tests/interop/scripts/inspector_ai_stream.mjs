// An AI Transport turn streamed in two halves (tests/interop/test_interop_inspector.py): alice
// sends a question, the agent streams the answer token by token and, before args.pauseAt, reports
// `EVENT {ev:'paused', runId, shown}` and waits for a message on args.gate, so the test sees the
// turn mid-stream before letting it complete.
import { agentSession, clientSession, codec, serve, tokenize, tokenStream, userMessage } from '../lib/ai.mjs';
import { args, run } from '../lib/relay.mjs';
import { gate } from './inspector_common.mjs';
import { event } from './presence_common.mjs';

run(async () => {
  const tokens = tokenize(args.answer);
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const agent = await agentSession(args.channel);
  const { opened } = await gate(agent.client, args.gate);
  const handle = await sender.session.view.send(codec.createUserMessage(userMessage(args.question)));
  const served = serve(agent, handle.toInvocation().toJSON(), {
    source: (r) =>
      tokenStream(tokens, {
        delayMs: 0,
        signal: r.abortSignal,
        onToken: async (index) => {
          if (index !== args.pauseAt) return;
          event({ ev: 'paused', runId: handle.runId, shown: tokens.slice(0, index).join('') });
          await opened;
        },
      }),
  });
  await handle.started;
  const outcome = await served;
  return { runId: handle.runId, outcome, errors: [...sender.errors, ...agent.errors] };
});
