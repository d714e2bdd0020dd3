// An unmodified @ably/ai-transport client session with the OpenAI Responses codec
// (`ResponsesCodec` from @ably/ai-transport/openai) asks a Python agent (channel-relay's
// `client.turns.AgentSession` with `codecs.openai`, run by the pytest test) two questions: it
// waits for the first run to end, then cancels the second once its answer has begun.
// Reports the view's messages (JS `getMessages`: codec-message-id and OpenAI message), their
// `toResponsesInput`, the runs, and the text deltas each run delivered live.
import { ResponsesCodec, toResponsesInput } from '@ably/ai-transport/openai';

import { clientSession, runStatus, runsOf, until } from '../lib/ai.mjs';
import { args, run, withTimeout } from '../lib/relay.mjs';

const ENDED = ['complete', 'cancelled', 'error'];

function userMessage(text) {
  return { role: 'user', items: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text }] }] };
}

run(async () => {
  const alice = await clientSession(args.channel, { clientId: 'alice', codec: ResponsesCodec });
  const deltas = {};
  alice.session.tree.on('output', (event) => {
    for (const output of event.events) {
      if (output.type === 'response.output_text.delta') (deltas[event.runId] ||= []).push(output.delta);
    }
  });
  const ask = async (text) => {
    const handle = await alice.session.view.send(ResponsesCodec.createUserMessage(userMessage(text)));
    await withTimeout(handle.started, 'the Python agent to start the run');
    return handle;
  };

  const first = await ask(args.question);
  await runStatus(alice.session, first.runId, ENDED);
  const second = await ask(args.second);
  await until(alice.session, () => (deltas[second.runId] ?? []).length >= 3, 'the second answer to begin');
  await alice.session.cancel(second.runId);
  await runStatus(alice.session, second.runId, ENDED);
  const messages = alice.session.view.getMessages();
  return {
    runIds: [first.runId, second.runId],
    runs: runsOf(alice.session.view),
    messages,
    responsesInput: toResponsesInput(messages.map((m) => m.message)),
    deltas: [deltas[first.runId] ?? [], deltas[second.runId] ?? []],
    errors: alice.errors,
  };
});
