// (1) A fresh send through the Vercel useChat path: the client's ChatTransport publishes the user
// message and POSTs the invocation to the "agent endpoint" (a fetch stub standing in for a
// serverless route: per request it opens a new agent session on its own connection, which
// attaches after the input was published and finds it in channel history); the agent streams
// the answer token by token. Reports the chunks useChat received, the UIMessage they build, and
// the client's view.
import { readUIMessageStream } from 'ai';

import {
  agentSession,
  clientSession,
  conversation,
  createChatTransport,
  recordDeltas,
  runStatus,
  runsOf,
  serve,
  tokenStream,
  tokenize,
  userMessage,
} from '../lib/ai.mjs';
import { args, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const tokens = tokenize(args.answer);
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const agents = [];
  const deltas = recordDeltas(sender.session);

  const posts = [];
  const served = [];
  const fetchStub = async (url, init) => {
    const body = JSON.parse(init.body);
    posts.push({ url: String(url), body });
    served.push(
      (async () => {
        const agent = await agentSession(body.sessionName);
        agents.push(agent);
        return serve(agent, body, {
          coldStart: true,
          source: (r) => tokenStream(tokens, { delayMs: 3, signal: r.abortSignal }),
        });
      })(),
    );
    return new Response(JSON.stringify({ ok: true }), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  const chat = createChatTransport(sender.session, { api: 'http://agent.invalid/api/chat', fetch: fetchStub });
  const question = userMessage(args.question);
  const stream = await chat.sendMessages({
    trigger: 'submit-message',
    chatId: args.channel,
    messageId: undefined,
    messages: [question],
    abortSignal: undefined,
  });

  // What useChat does with the stream: fold the chunks into a UIMessage.
  const chunks = [];
  const tap = new TransformStream({
    transform(chunk, controller) {
      chunks.push(chunk);
      controller.enqueue(chunk);
    },
  });
  let built = null;
  await withTimeout(
    (async () => {
      for await (const message of readUIMessageStream({ stream: stream.pipeThrough(tap) })) built = message;
    })(),
    'the useChat stream to close',
  );
  const outcomes = await Promise.all(served);
  const runId = outcomes[0].runId;
  await runStatus(sender.session, runId, ['complete', 'cancelled', 'error']);
  return {
    tokens,
    posts,
    outcomes,
    chunkTypes: chunks.map((c) => c.type),
    chunkDeltas: chunks.filter((c) => c.type === 'text-delta').map((c) => c.delta),
    built: built && { role: built.role, text: built.parts.filter((p) => p.type === 'text').map((p) => p.text).join('') },
    streamingAfter: chat.streaming,
    conversation: conversation(sender.session.view),
    runs: runsOf(sender.session.view),
    deltas: deltas[runId] || [],
    errors: [...sender.errors, ...agents.flatMap((a) => a.errors)],
  };
});
