// (3)/(4) Late joiners: alice has a conversation of several turns with the agent; carol opens a
// client session on the channel with historyPageSize 3 either while the last answer is streaming
// (mode "mid") or after it ended (mode "after"), pages the whole history in, and (mid) follows the
// rest of the stream live. Reports both conversations and carol's history requests.
import {
  agentSession,
  clientSession,
  codec,
  conversation,
  runStatus,
  runsOf,
  serve,
  tokenStream,
  tokenize,
  userMessage,
} from '../lib/ai.mjs';
import { args, realtime, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const { channel, turns, mode } = args;
  const sender = await clientSession(channel, { clientId: 'alice' });
  const agent = await agentSession(channel);

  let joiner = null;
  const historyCalls = [];
  const historyPages = [];
  const join = async () => {
    // Count the joiner's history round trips (and their limit) on its channel object.
    const client = realtime({ clientId: 'carol' });
    const ch = client.channels.get(channel);
    const original = ch.history.bind(ch);
    const counted = (page) => {
      historyPages.push(page.items.length);
      const next = page.next.bind(page);
      page.next = async () => {
        const older = await next();
        return older ? counted(older) : older;
      };
      return page;
    };
    ch.history = async (params) => {
      historyCalls.push({ limit: params?.limit ?? null, untilAttach: params?.untilAttach ?? null });
      return counted(await original(params));
    };
    const { createClientSession } = await import('@ably/ai-transport/vercel');
    const session = createClientSession({ client, channelName: channel, historyPageSize: args.pageSize ?? 3 });
    await withTimeout(session.connect(), 'joiner connect');
    let guard = 0;
    while (session.view.hasOlder() && guard < 200) {
      await withTimeout(session.view.loadOlder(3), 'joiner loadOlder');
      guard += 1;
    }
    joiner = { session, client, atJoin: conversation(session.view) };
  };

  let lastRunId = null;
  for (let i = 0; i < turns.length; i += 1) {
    const [question, answer] = turns[i];
    const tokens = tokenize(answer);
    const last = i === turns.length - 1;
    const half = Math.floor(tokens.length / 2);
    const onToken = last && mode === 'mid' ? async (k) => (k === half ? join() : undefined) : undefined;
    const handle = await sender.session.view.send(codec.createUserMessage(userMessage(question)));
    const served = serve(agent, handle.toInvocation().toJSON(), {
      source: (r) => tokenStream(tokens, { delayMs: 2, onToken, signal: r.abortSignal }),
    });
    await handle.started;
    await served;
    await runStatus(sender.session, handle.runId, ['complete']);
    lastRunId = handle.runId;
  }
  if (mode === 'after') await join();
  await runStatus(joiner.session, lastRunId, ['complete']);
  return {
    sender: conversation(sender.session.view),
    joiner: conversation(joiner.session.view),
    joinerAtJoin: joiner.atJoin,
    joinerRuns: runsOf(joiner.session.view),
    senderRuns: runsOf(sender.session.view),
    historyCalls,
    historyPages,
    errors: [...sender.errors, ...agent.errors],
  };
});
