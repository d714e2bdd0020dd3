// A Python agent (channel-relay's `client.turns.AgentSession`, run by the pytest test) answers
// unmodified @ably/ai-transport client sessions. `args.mode` picks the scenario:
//   send      alice sends `args.question` and waits for the run to end;
//   approval  alice's phone sends, the run suspends for a tool approval, alice's laptop (a second
//             session, same clientId) approves it and both devices see the resumed run end;
//   fork      alice sends, the run ends asking for a client-side tool, alice answers it with a
//             tool-result fork (createToolResultFork + view.send) the agent continues;
//   branches  alice sends, regenerates the answer, edits the question; then selects branches;
//   cancel    alice and bob send concurrently; alice cancels her run, bob's ends complete;
//   early     alice sends and cancels at once, before the agent took the input up;
//   steer     alice sends; once the answer reads `args.answer` she steers `args.steer` into the
//             running turn (run.steer) and waits for its outcome and the run's end;
//   late      alice sends; once she sees text, bob joins (entering presence as `joined`, the cue
//             for the test to drop his socket) and follows the run to its end.
// Reports what the JS side sees: conversations, runs, messages with their parts, live deltas.
import { createToolResultFork } from '@ably/ai-transport/vercel';

import {
  clientSession,
  codec,
  conversation,
  messagesOf,
  recordDeltas,
  runStatus,
  runsOf,
  textOf,
  until,
  userMessage,
} from '../lib/ai.mjs';
import { args, run, withTimeout } from '../lib/relay.mjs';

const ENDED = ['complete', 'cancelled', 'error'];

async function ask(session, text) {
  const handle = await session.view.send(codec.createUserMessage(userMessage(text)));
  await withTimeout(handle.started, 'the Python agent to start the run');
  return handle;
}

function lastOf(view, role) {
  return view.getMessages().filter((m) => m.message.role === role).at(-1);
}

function branch(view, codecMessageId) {
  const handle = view.branchSelection(codecMessageId);
  return { index: handle.index, count: handle.siblings.length };
}

/** The agent presence statuses `session` sees ([clientId, status], offline on leave), from its
 * connect on; `settled(status)` resolves once the last one is `status`. */
function agentStatuses(session) {
  const seen = [];
  const waiters = [];
  const record = (message) => {
    const status = message.action === 'leave' ? 'offline' : message.data?.status;
    if (typeof status !== 'string') return;
    // The initial members (presence.get) and the subscription's first event can repeat a status.
    const last = seen.findLast(([clientId]) => clientId === message.clientId);
    if (last?.[1] === status) return;
    seen.push([message.clientId, status]);
    waiters.forEach((w) => w());
  };
  session.presence.subscribe(record);
  const settled = (status) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => seen.at(-1)?.[1] === status && resolve();
        waiters.push(check);
        check();
      }),
      `agent status ${status}`,
    );
  return { seen, record, settled };
}

const scenarios = {
  async send() {
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const statuses = agentStatuses(alice.session);
    for (const member of await alice.session.presence.get()) statuses.record(member);
    const deltas = recordDeltas(alice.session);
    const handle = await ask(alice.session, args.question);
    await runStatus(alice.session, handle.runId, ENDED);
    if (statuses.seen.length > 0) await statuses.settled('idle');
    return {
      agentStatuses: statuses.seen,
      runId: handle.runId,
      status: handle.status,
      conversation: conversation(alice.session.view),
      runs: runsOf(alice.session.view),
      deltas: deltas[handle.runId] || [],
      messages: messagesOf(alice.session.view),
      errors: alice.errors,
    };
  },

  async approval() {
    const phone = await clientSession(args.channel, { clientId: 'alice' });
    const laptop = await clientSession(args.channel, { clientId: 'alice' });
    const handle = await ask(phone.session, args.question);
    await runStatus(laptop.session, handle.runId, ['suspended']);
    const assistant = lastOf(laptop.session.view, 'assistant');
    const approval = codec.createToolApprovalResponse(assistant.codecMessageId, { toolCallId: args.toolCallId, approved: true });
    await laptop.session.view.send(approval, { runId: handle.runId });
    for (const device of [phone, laptop]) await runStatus(device.session, handle.runId, ENDED);
    return {
      runId: handle.runId,
      phone: { messages: messagesOf(phone.session.view), runs: runsOf(phone.session.view) },
      laptop: { messages: messagesOf(laptop.session.view), runs: runsOf(laptop.session.view) },
      errors: [...phone.errors, ...laptop.errors],
    };
  },

  async fork() {
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const first = await ask(alice.session, args.question);
    await runStatus(alice.session, first.runId, ENDED);
    const trunk = alice.session.tree.getRunNode(first.runId);
    const { input, sendOptions } = createToolResultFork({
      runMessages: codec.getMessages(trunk.projection),
      parentCodecMessageId: trunk.parentCodecMessageId,
      toolCallId: args.toolCallId,
      result: { output: args.output },
      supersedesRunId: first.runId,
    });
    const fork = await alice.session.view.send(input, sendOptions);
    await withTimeout(fork.started, 'the Python agent to continue the fork');
    await runStatus(alice.session, fork.runId, ENDED);
    await until(alice.session, () => conversation(alice.session.view).at(-1)?.text === args.answer, 'the fork answer');
    return {
      firstRunId: first.runId,
      forkRunId: fork.runId,
      conversation: conversation(alice.session.view),
      messages: messagesOf(alice.session.view),
      runs: runsOf(alice.session.view),
      errors: alice.errors,
    };
  },

  async branches() {
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const view = alice.session.view;
    const first = await ask(alice.session, args.question);
    await runStatus(alice.session, first.runId, ENDED);
    const question = lastOf(view, 'user');
    const answer = lastOf(view, 'assistant');
    const regen = await view.regenerate(answer.codecMessageId);
    await withTimeout(regen.started, 'the regenerate run');
    await runStatus(alice.session, regen.runId, ENDED);
    const edited = await view.edit(question.codecMessageId, codec.createUserMessage(userMessage(args.edited)));
    await withTimeout(edited.started, 'the edit run');
    await runStatus(alice.session, edited.runId, ENDED);
    const afterEdit = conversation(view);
    const questionBranch = branch(view, lastOf(view, 'user').codecMessageId);
    view.branchSelection(question.codecMessageId).select(0);
    const original = conversation(view);
    const answerBranch = branch(view, lastOf(view, 'assistant').codecMessageId);
    view.branchSelection(lastOf(view, 'assistant').codecMessageId).select(0);
    return {
      afterEdit,
      questionBranch,
      original,
      answerBranch,
      firstAnswer: conversation(view),
      errors: alice.errors,
    };
  },

  async cancel() {
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const bob = await clientSession(args.channel, { clientId: 'bob' });
    const mine = await ask(alice.session, 'long');
    const theirs = await ask(bob.session, 'short');
    await until(alice.session, () => lastOf(alice.session.view, 'assistant') !== undefined, 'some output');
    await alice.session.cancel(mine.runId);
    await runStatus(alice.session, mine.runId, ENDED);
    await runStatus(alice.session, theirs.runId, ENDED);
    return { mine: mine.runId, theirs: theirs.runId, runs: runsOf(alice.session.view), errors: [...alice.errors, ...bob.errors] };
  },

  async early() {
    // Cancel before the agent started the run: the cancel names the input, the agent honours
    // it when it takes the input up.
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const handle = await alice.session.view.send(codec.createUserMessage(userMessage(args.question)));
    await handle.cancel();
    await withTimeout(handle.started, 'the Python agent to start the cancelled run');
    await runStatus(alice.session, handle.runId, ENDED);
    return { runId: handle.runId, runs: runsOf(alice.session.view), errors: alice.errors };
  },

  async steer() {
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const handle = await ask(alice.session, args.question);
    await until(alice.session, () => lastOf(alice.session.view, 'assistant') && textOf(lastOf(alice.session.view, 'assistant').message) === args.answer, 'the first answer');
    const steer = handle.steer(codec.createUserMessage(userMessage(args.steer)));
    const published = await withTimeout(steer.published, 'the steer publish');
    const outcome = await withTimeout(steer.outcome, 'the steer outcome');
    await runStatus(alice.session, handle.runId, ENDED);
    return {
      runId: handle.runId,
      published: typeof published.serial === 'string',
      outcome,
      conversation: conversation(alice.session.view),
      errors: alice.errors,
    };
  },

  async late() {
    const alice = await clientSession(args.channel, { clientId: 'alice' });
    const handle = await ask(alice.session, args.question);
    await until(alice.session, () => (conversation(alice.session.view).at(-1)?.text ?? '').length > 0, 'some text');
    const bob = await clientSession(args.channel, { clientId: 'bob' });
    const deltas = recordDeltas(bob.session);
    // A client session hydrates history on demand: page it in to see the run's start.
    while (bob.session.view.hasOlder()) await withTimeout(bob.session.view.loadOlder(), 'bob loadOlder');
    const states = [];
    bob.client.connection.on((change) => states.push(change.current));
    await bob.client.channels.get(args.channel).presence.enter('joined');
    await runStatus(bob.session, handle.runId, ENDED);
    await runStatus(alice.session, handle.runId, ENDED);
    return {
      runId: handle.runId,
      alice: conversation(alice.session.view),
      bob: conversation(bob.session.view),
      bobRuns: runsOf(bob.session.view),
      bobLiveText: (deltas[handle.runId] || []).join(''),
      bobStates: states,
      errors: [...alice.errors, ...bob.errors],
    };
  },
};

run(async () => scenarios[args.mode ?? 'send']());
