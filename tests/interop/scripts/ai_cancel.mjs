// (5) Cancel from another client: alice sends, the agent streams slowly; once `cancelAt` tokens
// are out, dave (another client session on the channel) cancels the run by its id. The agent's
// run aborts (its pipe returns "cancelled") and it ends the run cancelled; everyone's view shows
// the run cancelled with the text streamed so far.
import {
  agentSession,
  clientSession,
  codec,
  conversation,
  runStatus,
  runsOf,
  serve,
  sleep,
  tokenStream,
  tokenize,
  until,
  userMessage,
} from '../lib/ai.mjs';
import { args, run } from '../lib/relay.mjs';

// args.ports (optional): {agent, sender, other}, a relay node each (the cluster test).
const on = (who) => (args.ports ? { port: args.ports[who] } : {});

run(async () => {
  const tokens = tokenize(args.answer);
  const sender = await clientSession(args.channel, { clientId: 'alice', clientOptions: on('sender') });
  const other = await clientSession(args.channel, { clientId: 'dave', clientOptions: on('other') });
  const agent = await agentSession(args.channel, { clientOptions: on('agent') });
  let produced = 0;
  let abortedAt = null;
  const handle = await sender.session.view.send(codec.createUserMessage(userMessage(args.question)));
  const served = serve(agent, handle.toInvocation().toJSON(), {
    source: (r) => {
      r.abortSignal.addEventListener('abort', () => {
        abortedAt = produced;
      });
      return tokenStream(tokens, {
        delayMs: 20,
        signal: r.abortSignal,
        onToken: async (k) => {
          produced = k;
          // Never run past the cancel point before the cancel has been issued.
          if (k >= args.cancelAt) while (!r.abortSignal.aborted) await sleep(5);
        },
      });
    },
  });
  await handle.started;
  const runId = handle.runId;
  // dave waits until he has seen `cancelAt` tokens of alice's run, then cancels it.
  const textIn = (session) => {
    const msgs = session.view.getMessages();
    const last = msgs[msgs.length - 1];
    return last && last.message.role === 'assistant' ? last.message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('') : '';
  };
  const prefix = tokens.slice(0, args.cancelAt).join('');
  await until(other.session, () => textIn(other.session) === prefix, 'dave to see the first tokens');
  const daveSawRun = other.session.view.run(runId);
  await other.session.cancel(runId);
  const outcome = await served;
  await runStatus(sender.session, runId, ['complete', 'cancelled', 'error']);
  await runStatus(other.session, runId, ['complete', 'cancelled', 'error']);
  return {
    tokens,
    runId,
    outcome,
    abortedAt,
    daveSawRun: daveSawRun && { clientId: daveSawRun.clientId, status: daveSawRun.status },
    handleStatus: handle.status,
    sender: { conversation: conversation(sender.session.view), runs: runsOf(sender.session.view) },
    other: { conversation: conversation(other.session.view), runs: runsOf(other.session.view) },
    errors: [...sender.errors, ...other.errors, ...agent.errors],
  };
});
