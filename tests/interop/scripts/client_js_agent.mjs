// An unmodified @ably/ai-transport agent session serves the inputs a Python `client.turns`
// session publishes. The agent watches the channel for `ai-input` messages (as an agent route
// would receive their invocation {inputEventId, sessionName}) and streams `args.answers[i]`
// ({tokens, delayMs}) for the i-th input, honouring cancels (the pipe stops when the run's abort
// signal fires). Stops after one run per answer; reports each run's outcome. It enters presence
// as `agent-watch` once it listens, which is what the Python test waits for before sending.
import { Invocation } from '@ably/ai-transport';

import { agentSession, serve, tokenStream } from '../lib/ai.mjs';
import { args, realtime, run, withTimeout } from '../lib/relay.mjs';

run(async () => {
  const agent = await agentSession(args.channel);
  const watcher = realtime({ clientId: 'agent-watch' });
  const channel = watcher.channels.get(args.channel);
  const seen = new Set();
  const outcomes = [];
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  // Invocation i streams args.answers[i] ({tokens, delayMs}).
  let served = 0;
  await channel.subscribe('ai-input', (message) => {
    const eventId = message.extras?.ai?.transport?.['event-id'];
    if (!eventId || seen.has(eventId)) return;
    seen.add(eventId);
    const invocation = Invocation.fromJSON({ inputEventId: eventId, sessionName: args.channel }).toJSON();
    const { tokens, delayMs } = args.answers[Math.min(served, args.answers.length - 1)];
    served += 1;
    serve(agent, invocation, {
      source: (r) => tokenStream(tokens, { delayMs, signal: r.abortSignal }),
    }).then((outcome) => {
      outcomes.push(outcome);
      if (outcomes.length >= args.answers.length) done();
    });
  });
  // Tell the Python side the agent is listening: it waits for this presence member.
  await channel.presence.enter('ready');
  await withTimeout(finished, 'the expected invocations', 25000);
  return { outcomes, errors: agent.errors };
});
