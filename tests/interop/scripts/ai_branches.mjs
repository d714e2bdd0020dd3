// (6) Regenerate and edit: alice asks a question and gets an answer; she regenerates the answer
// (a new run that replaces the assistant message: two siblings at that message), then edits her
// question (a new input forking the original: two siblings at the user message). A second client
// session attached from the start (bob) sees the same tree. Reports the branch handles.
import {
  agentSession,
  clientSession,
  codec,
  conversation,
  runStatus,
  serve,
  textOf,
  tokenStream,
  tokenize,
  userMessage,
} from '../lib/ai.mjs';
import { args, run } from '../lib/relay.mjs';

run(async () => {
  const sender = await clientSession(args.channel, { clientId: 'alice' });
  const watcher = await clientSession(args.channel, { clientId: 'bob' });
  const agent = await agentSession(args.channel);
  const answer = async (handle, text) => {
    const served = serve(agent, handle.toInvocation().toJSON(), {
      source: (r) => tokenStream(tokenize(text), { delayMs: 1, signal: r.abortSignal }),
    });
    await handle.started;
    const outcome = await served;
    await runStatus(sender.session, handle.runId, ['complete']);
    await runStatus(watcher.session, handle.runId, ['complete']);
    return outcome;
  };
  const view = sender.session.view;
  const branch = (v, id) => {
    const b = v.branchSelection(id);
    return { hasSiblings: b.hasSiblings, index: b.index, siblings: b.siblings.map((m) => ({ role: m.role, text: textOf(m) })) };
  };

  const first = await view.send(codec.createUserMessage(userMessage(args.question)));
  await answer(first, args.answers[0]);
  const afterFirst = conversation(view);
  const [userEntry, assistantEntry] = view.getMessages();

  const regen = await view.regenerate(assistantEntry.codecMessageId);
  await answer(regen, args.answers[1]);
  const afterRegen = conversation(view);
  const regenBranch = branch(view, assistantEntry.codecMessageId);

  const edited = await view.edit(userEntry.codecMessageId, codec.createUserMessage(userMessage(args.edited)));
  await answer(edited, args.answers[2]);
  const afterEdit = conversation(view);
  const editBranch = branch(view, userEntry.codecMessageId);
  const editedNode = sender.session.tree.getNodeByCodecMessageId(edited.inputCodecMessageId);

  // Navigate back to the original question: its (regenerated) answer shows again.
  view.branchSelection(userEntry.codecMessageId).select(0);
  const afterSelect = conversation(view);

  const regenNode = sender.session.tree.getRunNode(regen.runId);
  return {
    afterFirst,
    afterRegen,
    regenBranch,
    regenRun: { regenerates: regenNode?.regeneratesCodecMessageId ?? null, expected: assistantEntry.codecMessageId },
    afterEdit,
    editBranch,
    editedForkOf: editedNode?.forkOf ?? null,
    expectedForkOf: userEntry.codecMessageId,
    afterSelect,
    watcher: {
      conversation: conversation(watcher.session.view),
      regenBranch: branch(watcher.session.view, assistantEntry.codecMessageId),
      editBranch: branch(watcher.session.view, userEntry.codecMessageId),
    },
    statuses: [first.status, regen.status, edited.status],
    errors: [...sender.errors, ...watcher.errors, ...agent.errors],
  };
});
