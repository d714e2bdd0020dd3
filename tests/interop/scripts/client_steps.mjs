// Explicit run steps and adopted runs between @ably/ai-transport 0.8.0 and Python `client.turns`.
// `args.mode` picks the part the JS SDK plays (the Python test plays the rest):
//   observe  a JS client session (clientId `observer`) follows the channel live from before the
//            user sends; once `args.runs` runs have ended it reports what it saw, and what a JS
//            session that joins afterwards reads from history: conversation, runs, each run's
//            steps (the Tree's StepInfo). It enters presence as `js-observer` once it listens.
//   agent    a JS agent serves input event `args.inputEventId` with explicit steps: a step
//            `think` that streams `args.wrong` and ends failed, its retry (createStep with no
//            stepId reuses the failed step's id) streaming `args.right`; then ends the run, or
//            with `args.handOff` leaves it open for another process to adopt.
//   adopt    a JS agent adopts run `args.runId` (adoptRun + load) for `args.inputEventId`, streams
//            `args.right` in a step `summarise` and ends the run complete.
//   headers  the HEADER_* constants the package exports.
import * as transport from '@ably/ai-transport';
import { Invocation } from '@ably/ai-transport';

import { agentSession, clientSession, conversation, messagesOf, runsOf, tokenStream, until } from '../lib/ai.mjs';
import { args, realtime, run, withTimeout } from '../lib/relay.mjs';

const ENDED = ['complete', 'cancelled', 'error'];

function stepsOf(session) {
  const out = {};
  for (const r of session.view.runs()) {
    const node = session.tree.getRunNode(r.runId);
    out[r.runId] = (node?.steps ?? []).map(({ stepId, status, attemptCount, stepClientId }) => ({
      stepId,
      status,
      attemptCount,
      stepClientId,
    }));
  }
  return out;
}

function report(session) {
  return { conversation: conversation(session.view), runs: runsOf(session.view), steps: stepsOf(session) };
}

function invocation() {
  return Invocation.fromJSON({ inputEventId: args.inputEventId, sessionName: args.channel });
}

async function pipeStep(step, text, textId) {
  await withTimeout(step.start(), 'step.start()');
  const result = await step.pipe(tokenStream([text], { delayMs: 1, textId }));
  return result.reason;
}

const modes = {
  async observe() {
    const observer = await clientSession(args.channel, { clientId: 'observer' });
    const watcher = realtime({ clientId: 'js-observer' });
    await watcher.channels.get(args.channel).presence.enter('ready');
    await until(
      observer.session,
      () => {
        const runs = observer.session.view.runs();
        return runs.length >= args.runs && runs.every((r) => ENDED.includes(r.status));
      },
      `${args.runs} ended runs`,
      25000,
    );
    const live = report(observer.session);
    const late = await clientSession(args.channel, { clientId: 'late' });
    while (late.session.view.hasOlder()) await withTimeout(late.session.view.loadOlder(), 'late loadOlder');
    const result = { live, late: report(late.session), errors: [...observer.errors, ...late.errors] };
    await observer.session.close();
    await late.session.close();
    return result;
  },

  async agent() {
    const agent = await agentSession(args.channel, { clientId: 'js-agent' });
    const r = agent.session.createRun(invocation());
    // The input was published before this agent attached: page history to it (a cold start).
    while (r.view.hasOlder()) await withTimeout(r.view.loadOlder(), 'run.view.loadOlder()');
    await withTimeout(r.start(), 'run.start()');
    const first = r.createStep({ stepId: 'think' });
    const firstReason = await pipeStep(first, args.wrong, 'w');
    await first.end({ reason: 'failed' });
    const retry = r.createStep();
    const retryReason = await pipeStep(retry, args.right, 'r');
    await retry.end();
    if (!args.handOff) await r.end({ reason: 'complete' });
    return { runId: r.runId, invocationId: r.invocationId, retryStepId: retry.stepId, reasons: [firstReason, retryReason], errors: agent.errors };
  },

  async adopt() {
    const agent = await agentSession(args.channel, { clientId: 'js-worker' });
    const r = agent.session.adoptRun(invocation(), { runId: args.runId, invocationId: args.invocationId });
    await withTimeout(r.load({ timeoutMs: 10000 }), 'run.load()');
    const step = r.createStep({ stepId: 'summarise' });
    const reason = await pipeStep(step, args.right, 's');
    await step.end();
    await r.end({ reason: 'complete' });
    return { runId: r.runId, reason, errors: agent.errors };
  },

  async late() {
    // A reader that joins once the run ended, with `args.pageSize` wire messages per history
    // page: what it shows after the first page, and after all of them.
    const late = await clientSession(args.channel, { clientId: 'late', historyPageSize: args.pageSize });
    await withTimeout(late.session.view.loadOlder(1), 'late loadOlder');
    const first = messagesOf(late.session.view);
    while (late.session.view.hasOlder()) await withTimeout(late.session.view.loadOlder(), 'late loadOlder');
    return { first, all: messagesOf(late.session.view), errors: late.errors };
  },

  async headers() {
    return Object.fromEntries(Object.entries(transport).filter(([name]) => name.startsWith('HEADER_')));
  },
};

run(() => modes[args.mode]());
