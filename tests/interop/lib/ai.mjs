// Helpers for the @ably/ai-transport interop scripts: sessions on the relay, a scripted agent
// that streams a canned answer token by token (no model), and readers of the client's view.
//
// Everything goes through the package's public API (@ably/ai-transport and its /vercel entry,
// the Vercel AI SDK UIMessage codec, unless a session is given another `codec`, as the core
// entry takes it), exactly as an application would call it.

import {
  createAgentSession as createCoreAgentSession,
  createClientSession as createCoreClientSession,
  Invocation,
} from '@ably/ai-transport';
import {
  createAgentSession,
  createChatTransport,
  createClientSession,
  createUIMessageCodec,
} from '@ably/ai-transport/vercel';

import { realtime, withTimeout } from './relay.mjs';

export { Invocation, createChatTransport };

export const codec = createUIMessageCodec();

let counter = 0;
/** A unique id with a readable prefix. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A user UIMessage with one text part. */
export function userMessage(text, id = uid('u')) {
  return { id, role: 'user', parts: [{ type: 'text', text }] };
}

/** A connected client session (own Realtime connection, clientId) on `channelName`; with the
 * Vercel codec unless `codec` is given. */
export async function clientSession(channelName, { clientId, historyPageSize, clientOptions = {}, codec } = {}) {
  const client = realtime({ clientId, ...clientOptions });
  const options = { client, channelName };
  if (historyPageSize !== undefined) options.historyPageSize = historyPageSize;
  const session = codec ? createCoreClientSession({ ...options, codec }) : createClientSession(options);
  const errors = [];
  session.on('error', (err) => errors.push(String(err && err.message)));
  await withTimeout(session.connect(), `client session ${clientId} connect`);
  return { client, session, errors, clientId };
}

/** A connected agent session (own Realtime connection) on `channelName`; with the Vercel codec
 * unless `codec` is given. */
export async function agentSession(channelName, { clientId = 'agent', clientOptions = {}, codec } = {}) {
  const client = realtime({ clientId, ...clientOptions });
  const session = codec ? createCoreAgentSession({ client, channelName, codec }) : createAgentSession({ client, channelName });
  const errors = [];
  session.on('error', (err) => errors.push(String(err && err.message)));
  await withTimeout(session.connect(), 'agent session connect');
  return { client, session, errors };
}

/**
 * A UIMessageChunk source that streams `tokens` as one text part, `delayMs` apart.
 * `onToken(index)` is awaited before each token is enqueued (a hook to coordinate a test);
 * the stream stops producing once `signal` aborts (the transport also stops reading).
 */
export function tokenStream(tokens, { delayMs = 5, onToken, signal, textId = 'txt-1' } = {}) {
  let index = 0;
  let phase = 'start';
  return new ReadableStream({
    async pull(controller) {
      if (signal && signal.aborted) {
        controller.close();
        return;
      }
      if (phase === 'start') {
        controller.enqueue({ type: 'start' });
        controller.enqueue({ type: 'start-step' });
        controller.enqueue({ type: 'text-start', id: textId });
        phase = 'tokens';
        return;
      }
      if (phase === 'tokens' && index < tokens.length) {
        if (onToken) await onToken(index);
        if (delayMs > 0) await sleep(delayMs);
        controller.enqueue({ type: 'text-delta', id: textId, delta: tokens[index] });
        index += 1;
        return;
      }
      controller.enqueue({ type: 'text-end', id: textId });
      controller.enqueue({ type: 'finish-step' });
      controller.enqueue({ type: 'finish', finishReason: 'stop' });
      controller.close();
    },
  });
}

/**
 * Serve one invocation the way an agent route does: create the run from the invocation
 * (the pointer a client's run hands out), start it, pipe `source(run)` and end it with the
 * pipe's outcome (or suspend when `suspend` is set). With `steerSource` the run then waits for
 * a steer (the onSteer hook) and answers it as the SDK's agent loop does: another pass of
 * `steerSource(run)` while `run.hasInput()`. Resolves with what happened (and, `withMessages`,
 * the run view's messages once it ended).
 */
export async function serve(agent, invocation, { source, suspend = false, hooks = {}, coldStart = false, steerSource, withMessages = false } = {}) {
  let steered = Promise.resolve();
  if (steerSource) {
    steered = new Promise((resolve) => {
      hooks = { ...hooks, onSteer: () => resolve() };
    });
  }
  const run = agent.session.createRun(Invocation.fromJSON(invocation), {}, hooks);
  trace('agent: run created for input event', invocation.inputEventId);
  let pages = 0;
  if (coldStart) {
    // An agent that attached after the input was published finds it (and the conversation so
    // far) in channel history: the locator is passive, run.view.loadOlder() drives the paging.
    while (run.view.hasOlder() && pages < 100) {
      await withTimeout(run.view.loadOlder(), 'agent run.view.loadOlder()');
      pages += 1;
    }
    trace('agent: paged history', pages);
  }
  await withTimeout(run.start(), 'agent run.start()');
  trace('agent: run started', run.runId);
  let piped = await run.pipe(source(run));
  let passes = 1;
  if (steerSource && piped.reason === 'complete') {
    await withTimeout(steered, 'a steer into the run');
    while (run.hasInput() && piped.reason === 'complete') {
      trace('agent: answering a steer');
      piped = await run.pipe(steerSource(run));
      passes += 1;
    }
  }
  // A source that honours the abort signal may close before pipe() notices the signal (a race in
  // the SDK's pipeStream); the run was cancelled all the same.
  const result = run.abortSignal.aborted ? { ...piped, reason: 'cancelled' } : piped;
  trace('agent: pipe returned', result.reason);
  if (suspend && result.reason === 'complete') {
    await run.suspend();
    return { runId: run.runId, reason: 'suspend', invocationId: run.invocationId, historyPages: pages, passes };
  }
  await run.end(result.reason === 'error' ? { reason: 'error' } : { reason: result.reason });
  const outcome = { runId: run.runId, reason: result.reason, invocationId: run.invocationId, historyPages: pages, passes };
  return withMessages ? { ...outcome, messages: run.view.getMessages() } : outcome;
}

/** Split `text` into tokens of 1..3 words (keeping the spaces), deterministic. */
export function tokenize(text) {
  const words = text.split(/(?<= )/);
  const out = [];
  for (let i = 0; i < words.length; ) {
    const n = 1 + (i % 3 === 0 ? 0 : 1);
    out.push(words.slice(i, i + n).join(''));
    i += n;
  }
  return out;
}

/** The text of a UIMessage: its text parts joined. */
export function textOf(message) {
  if (!message) return null;
  return message.parts
    .filter((part) => part.type === 'text')
    .map((part) => part.text)
    .join('');
}

/** A view's visible conversation as [{role, text}] (plus tool parts by state, if any). */
export function conversation(view) {
  return view.getMessages().map(({ message }) => {
    const entry = { role: message.role, text: textOf(message) };
    const tools = message.parts.filter((part) => part.type.startsWith('tool-') || part.type === 'dynamic-tool');
    if (tools.length) entry.tools = tools.map((part) => ({ toolCallId: part.toolCallId, state: part.state }));
    return entry;
  });
}

/** The view's runs as plain objects. */
export function runsOf(view) {
  return view.runs().map((run) => ({ runId: run.runId, clientId: run.clientId, status: run.status }));
}

/** Resolve once `predicate()` holds, re-checked on every view/tree event; reject after `ms`. */
export function until(session, predicate, what, ms) {
  return withTimeout(
    new Promise((resolve) => {
      const offs = [];
      const check = () => {
        let ok = false;
        try {
          ok = predicate();
        } catch {
          ok = false;
        }
        if (ok) {
          offs.forEach((off) => off());
          resolve();
        }
      };
      offs.push(session.tree.on('update', check));
      offs.push(session.tree.on('run', check));
      offs.push(session.tree.on('output', check));
      offs.push(session.view.on('update', check));
      check();
    }),
    what,
    ms,
  );
}

/** Resolve when the run `runId` reaches one of `statuses` in `session`'s tree. */
export function runStatus(session, runId, statuses, what = `run ${runId} ${statuses}`) {
  return until(
    session,
    () => {
      const node = session.tree.getRunNode(runId);
      return node !== undefined && statuses.includes(node.state.status);
    },
    what,
  );
}

/** Collect the text deltas a session's tree reports live, per run, in arrival order. */
export function recordDeltas(session) {
  const byRun = {};
  session.tree.on('output', (event) => {
    for (const output of event.events) {
      if (output.type === 'text-delta') {
        const key = event.runId || '?';
        (byRun[key] ||= []).push(output.delta);
      }
    }
  });
  return byRun;
}

/** A progress line on stderr (shown by pytest when a script fails or hangs). */
export function trace(...parts) {
  process.stderr.write(`[ai ${new Date().toISOString()}] ${parts.join(' ')}\n`);
}

/** A UIMessageChunk source that enqueues `chunks` as given, `delayMs` apart; it stops once
 * `signal` aborts. */
export function chunkStream(chunks, { delayMs = 2, signal } = {}) {
  let index = 0;
  return new ReadableStream({
    async pull(controller) {
      if ((signal && signal.aborted) || index >= chunks.length) {
        controller.close();
        return;
      }
      if (delayMs > 0 && index > 0) await sleep(delayMs);
      controller.enqueue(chunks[index]);
      index += 1;
    },
  });
}

/** A view's visible messages as [{codecMessageId, role, parts}]. */
export function messagesOf(view) {
  return view.getMessages().map(({ codecMessageId, message }) => ({ codecMessageId, role: message.role, parts: message.parts }));
}
