// (7) Tool approval: the agent's first run calls a tool that needs the user's approval, asks
// for it and suspends; alice answers with a tool-approval-response continuation (carrying the
// run id); the agent resumes the same run, publishes the tool's output and a text answer, and
// ends it complete.
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

function toolCall(toolCallId, approvalId) {
  return new ReadableStream({
    start(controller) {
      controller.enqueue({ type: 'start' });
      controller.enqueue({ type: 'start-step' });
      controller.enqueue({ type: 'tool-input-start', toolCallId, toolName: 'get_weather' });
      controller.enqueue({ type: 'tool-input-delta', toolCallId, inputTextDelta: '{"city":' });
      controller.enqueue({ type: 'tool-input-delta', toolCallId, inputTextDelta: '"Berlin"}' });
      controller.enqueue({ type: 'tool-input-available', toolCallId, toolName: 'get_weather', input: { city: 'Berlin' } });
      controller.enqueue({ type: 'tool-approval-request', toolCallId, approvalId });
      controller.enqueue({ type: 'finish-step' });
      controller.enqueue({ type: 'finish', finishReason: 'tool-calls' });
      controller.close();
    },
  });
}

function toolResultThenText(toolCallId, text, signal) {
  const rest = tokenStream(tokenize(text), { delayMs: 2, signal, textId: 'txt-2' });
  return new ReadableStream({
    async start(controller) {
      controller.enqueue({ type: 'tool-output-available', toolCallId, output: { tempC: 4 } });
      const reader = rest.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        controller.enqueue(value);
      }
      controller.close();
    },
  });
}

run(async () => {
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const agent = await agentSession(args.channel);
  const view = sender.session.view;
  const toolCallId = 'call-1';

  const handle = await view.send(codec.createUserMessage(userMessage(args.question)));
  const first = await serve(agent, handle.toInvocation().toJSON(), { source: () => toolCall(toolCallId, 'appr-1'), suspend: true });
  await handle.started;
  const runId = handle.runId;
  await runStatus(sender.session, runId, ['suspended']);
  const assistant = view.getMessages().find((m) => m.message.role === 'assistant');
  const whileSuspended = { conversation: conversation(view), runs: runsOf(view) };

  // Approve: a continuation of the suspended run.
  const approval = codec.createToolApprovalResponse(assistant.codecMessageId, { toolCallId, approved: true });
  const resumed = await view.send(approval, { runId });
  const resumeKinds = [];
  sender.session.tree.on('run', (e) => resumeKinds.push(e.type));
  const second = await serve(agent, resumed.toInvocation().toJSON(), {
    source: (r) => toolResultThenText(toolCallId, args.answer, r.abortSignal),
  });
  await runStatus(sender.session, runId, ['complete', 'cancelled', 'error']);
  await until(sender.session, () => conversation(view).some((m) => m.text === args.answer), 'the final text');
  await sleep(50);
  return {
    runId,
    first,
    second,
    resumedRunId: resumed.runId,
    whileSuspended,
    resumeKinds,
    final: { conversation: conversation(view), runs: runsOf(view) },
    errors: [...sender.errors, ...agent.errors],
  };
});
