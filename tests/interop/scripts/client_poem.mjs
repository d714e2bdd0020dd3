// The poem codec (lib/poem_codec.mjs, declared with @ably/ai-transport's defineCodec) across the
// relay, against the same codec declared in Python. `args.mode`:
//   client  alice (a core createClientSession with the poem codec) sends `args.question` to a
//           Python agent; once her view shows `args.cancelAt` characters of a line she cancels
//           the run, mid-line; reports her view's messages once the run ended;
//   agent   a core createAgentSession with the poem codec serves the first ai-input with
//           `args.events`, `args.delayMs` apart, honouring a cancel (its stream stops on the
//           run's abort signal: the encoder closes the open line as cancelled); enters presence
//           as `agent-watch` once it listens; reports the run's outcome;
// and in both modes, after the run ended, a late joiner (a fresh client session reading the
// channel's history) reports its messages too: how a JS reader rebuilds the interrupted turn.
import { createAgentSession, createClientSession, Invocation } from '@ably/ai-transport';

import { chunkStream, runStatus, serve, trace, uid, until } from '../lib/ai.mjs';
import { poemCodec } from '../lib/poem_codec.mjs';
import { args, realtime, run, withTimeout } from '../lib/relay.mjs';

const ENDED = ['complete', 'cancelled', 'error'];

async function clientSession(clientId) {
  const client = realtime({ clientId });
  const session = createClientSession({ client, channelName: args.channel, codec: poemCodec });
  const errors = [];
  session.on('error', (err) => errors.push(String(err && err.message)));
  await withTimeout(session.connect(), `client session ${clientId} connect`);
  return { client, session, errors };
}

const messagesOf = (session) => session.view.getMessages().map(({ message }) => message);
const lineText = (session) =>
  messagesOf(session)
    .flatMap((m) => m.parts)
    .filter((p) => p.type === 'line')
    .map((p) => p.text)
    .join('');

async function lateJoiner() {
  const bob = await clientSession('bob');
  while (bob.session.view.hasOlder()) await withTimeout(bob.session.view.loadOlder(), 'late joiner loadOlder');
  await until(bob.session, () => messagesOf(bob.session).length >= args.expectMessages, 'the late joiner to rebuild the turn');
  return { messages: messagesOf(bob.session), errors: bob.errors };
}

const modes = {
  async client() {
    const alice = await clientSession('alice');
    const message = { id: uid('u'), role: 'user', parts: [{ type: 'text', text: args.question }] };
    const handle = await alice.session.view.send(poemCodec.createUserMessage(message));
    await withTimeout(handle.started, 'the Python agent to start the run');
    trace('client: run started', handle.runId);
    await until(alice.session, () => lineText(alice.session).length >= args.cancelAt, 'part of the line');
    trace('client: cancelling at', lineText(alice.session));
    await alice.session.cancel(handle.runId);
    await runStatus(alice.session, handle.runId, ENDED);
    const status = alice.session.tree.getRunNode(handle.runId).state.status;
    return { runId: handle.runId, status, messages: messagesOf(alice.session), late: await lateJoiner(), errors: alice.errors };
  },

  async agent() {
    const client = realtime({ clientId: 'agent' });
    const agent = { client, session: createAgentSession({ client, channelName: args.channel, codec: poemCodec }) };
    const errors = [];
    agent.session.on('error', (err) => errors.push(String(err && err.message)));
    await withTimeout(agent.session.connect(), 'agent session connect');
    const watcher = realtime({ clientId: 'agent-watch' });
    const channel = watcher.channels.get(args.channel);
    const invoked = new Promise((resolve) => {
      channel.subscribe('ai-input', (message) => {
        const eventId = message.extras?.ai?.transport?.['event-id'];
        if (eventId) resolve(eventId);
      });
    });
    await channel.attach();
    await channel.presence.enter();
    const eventId = await withTimeout(invoked, 'an input to serve', 30000);
    const invocation = Invocation.fromJSON({ inputEventId: eventId, sessionName: args.channel }).toJSON();
    const source = (r) => chunkStream(args.events, { delayMs: args.delayMs, signal: r.abortSignal });
    const outcome = await serve(agent, invocation, { source });
    return { ...outcome, late: await lateJoiner(), errors };
  },
};

run(() => modes[args.mode]());
