// An unmodified @ably/ai-transport agent session serves the inputs Python `client.turns`
// sessions publish. The agent watches the channel for `ai-input` messages (as an agent route
// would receive their invocation {inputEventId, sessionName}) and serves the i-th invocation
// with `args.answers[i]`: {tokens, delayMs} streams one text part, {chunks, delayMs} pipes the
// given UIMessageChunks; `suspend: true` suspends the run afterwards instead of ending it;
// `steerTokens` keeps the run open for a steer and answers it with a second text part.
// A steer (a user message carrying a run-id) is no invocation. Runs are served concurrently and
// honour cancels (the pipe stops when the run's abort signal fires). Stops after one run per
// answer; reports each run's outcome. It enters presence as `agent-watch` once it listens,
// which is what the Python test waits for before sending. With `args.reportStatus` the agent also
// reports its status on presence: idle, thinking, streaming, idle again, and leaves at the end.
// With `args.codec: "openai"` the agent speaks the OpenAI Responses codec (its chunks are
// Responses stream events); each outcome carries the run view's messages when it ended.
import { Invocation } from '@ably/ai-transport';
import { ResponsesCodec } from '@ably/ai-transport/openai';

import { agentSession, chunkStream, serve, tokenStream } from '../lib/ai.mjs';
import { args, realtime, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const agent = await agentSession(args.channel, { codec: args.codec === 'openai' ? ResponsesCodec : undefined });
  const watcher = realtime({ clientId: 'agent-watch' });
  const channel = watcher.channels.get(args.channel);
  const seen = new Set();
  const outcomes = [];
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  let served = 0;
  await channel.subscribe('ai-input', (message) => {
    const transport = message.extras?.ai?.transport ?? {};
    const kind = message.extras?.ai?.codec?.kind;
    const eventId = transport['event-id'];
    if (!eventId || seen.has(eventId)) return;
    if (kind === 'user-message' && transport['run-id']) return;
    seen.add(eventId);
    const invocation = Invocation.fromJSON({ inputEventId: eventId, sessionName: args.channel }).toJSON();
    const answer = args.answers[Math.min(served, args.answers.length - 1)];
    const index = served;
    served += 1;
    const source = (r) => {
      const stream = answer.chunks
        ? chunkStream(answer.chunks, { delayMs: answer.delayMs ?? 2, signal: r.abortSignal })
        : tokenStream(answer.tokens, { delayMs: answer.delayMs ?? 5, signal: r.abortSignal });
      return args.reportStatus ? reportStreaming(stream) : stream;
    };
    if (args.reportStatus) agent.session.presence.update({ status: 'thinking' });
    // {steerTokens}: after the first answer the run waits for a steer and streams these.
    const steerSource = answer.steerTokens
      ? (r) => tokenStream(answer.steerTokens, { delayMs: 2, signal: r.abortSignal, textId: 'txt-steer' })
      : undefined;
    const withMessages = args.codec === 'openai';
    serve(agent, invocation, { source, suspend: Boolean(answer.suspend), steerSource, withMessages }).then(async (outcome) => {
      if (args.reportStatus) await agent.session.presence.update({ status: 'idle' });
      outcomes.push({ index, kind, ...outcome });
      if (outcomes.length >= args.answers.length) done();
    });
  });
  // With args.reportStatus the agent reports idle / thinking / streaming on presence, the
  // agent-presence pattern, and leaves (offline) at the end.
  const reportStreaming = (stream) => {
    let first = true;
    return stream.pipeThrough(
      new TransformStream({
        async transform(chunk, controller) {
          if (first) await agent.session.presence.update({ status: 'streaming' });
          first = false;
          controller.enqueue(chunk);
        },
      }),
    );
  };
  if (args.reportStatus) await agent.session.presence.enter({ status: 'idle' });
  // Tell the Python side the agent is listening: it waits for this presence member.
  await channel.presence.enter('ready');
  await withTimeout(finished, 'the expected invocations', 25000);
  if (args.reportStatus) await agent.session.presence.leave();
  outcomes.sort((a, b) => a.index - b.index);
  return { outcomes, errors: agent.errors };
});
