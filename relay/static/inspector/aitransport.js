// An AI Transport session read off its channel (the wire of @ably/ai-transport 0.8): user
// inputs, the runs (turns) answering them with their owner and state, what each run streamed,
// cancels, and branches (edits and regenerations).
//
// Everything comes from message names and the string maps extras.ai.transport / extras.ai.codec.
// Messages may arrive twice (history up to the attach point, then live) and a streamed output
// arrives as a create followed by appends, or aggregated as one update: each message is kept by
// serial with its latest version serial, and an event no newer than what is held is ignored.

import { actionName, dataText, decodeData } from './messages.js';

const RUN_STATES = { 'ai-run-start': 'streaming', 'ai-run-resume': 'streaming', 'ai-run-suspend': 'suspended' };

export class AiSession {
  constructor() {
    this.inputs = new Map(); // codec-message-id -> {id, clientId, parts: Map(serial -> text), ...}
    this.runs = new Map(); // run-id -> {id, owner, inputId, state, reason, outputs: Map(serial -> part)}
    this.cancels = [];
    this.versions = new Map(); // message serial -> latest version serial applied
    this.seenCancels = new Set();
    this.order = 0;
  }

  /** Apply one channel message; true when it belonged to the session (has extras.ai). */
  apply(message) {
    const ai = message.extras?.ai;
    if (!ai) return false;
    const transport = ai.transport || {};
    const codec = ai.codec || {};
    const action = actionName(message.action);
    if (!this.isNewer(message, action)) return true;
    switch (message.name) {
      case 'ai-input':
        this.applyInput(message, transport, codec, action);
        break;
      case 'ai-cancel':
        if (!this.seenCancels.has(message.id)) {
          this.seenCancels.add(message.id);
          this.cancels.push({
            clientId: message.clientId,
            runId: transport['run-id'] || null,
            inputId: transport['input-codec-message-id'] || null,
            timestamp: message.timestamp,
          });
        }
        break;
      case 'ai-run-end': {
        const run = this.run(transport);
        run.reason = transport['run-reason'] || 'complete';
        run.state = run.reason;
        if (transport['error-message']) run.error = `${transport['error-code'] || ''} ${transport['error-message']}`.trim();
        break;
      }
      case 'ai-output':
        this.applyOutput(message, transport, codec, action);
        break;
      default:
        if (RUN_STATES[message.name]) this.run(transport).state = RUN_STATES[message.name];
    }
    return true;
  }

  /** Whether `message` changes what is held for its serial (see the module comment). */
  isNewer(message, action) {
    const serial = message.serial;
    if (!serial) return true;
    const version = message.version?.serial || serial;
    const held = this.versions.get(serial);
    if (held !== undefined && version <= held && action !== 'create') return false;
    if (held !== undefined && action === 'create') return false;
    this.versions.set(serial, version);
    return true;
  }

  applyInput(message, transport, codec, action) {
    const id = transport['codec-message-id'];
    if (!id) return;
    let input = this.inputs.get(id);
    if (!input) {
      input = {
        id,
        order: (this.order += 1),
        clientId: message.clientId || transport['run-client-id'] || null,
        kind: codec.kind || 'user-message',
        parent: transport.parent || null,
        forkOf: transport['fork-of'] || null,
        regenerates: transport['msg-regenerate'] || null,
        parts: new Map(),
      };
      this.inputs.set(id, input);
    }
    input.parts.set(message.serial || message.id, action === 'delete' ? '' : dataText(decodeData(message.data, message.encoding)));
  }

  applyOutput(message, transport, codec, action) {
    const run = this.run(transport);
    run.messageId = run.messageId || transport['codec-message-id'] || null;
    if (transport.stream !== 'true') {
      if (codec.kind === 'error') run.error = dataText(decodeData(message.data, message.encoding));
      return;
    }
    const key = message.serial;
    const text = dataText(decodeData(message.data, message.encoding));
    const part = run.outputs.get(key) || { kind: codec.kind || 'text', text: '', status: 'streaming' };
    if (action === 'append') part.text += text;
    else if (action === 'delete') part.text = '';
    else part.text = text;
    if (transport.status) part.status = transport.status;
    run.outputs.set(key, part);
  }

  run(transport) {
    const id = transport['run-id'] || '(no run-id)';
    let run = this.runs.get(id);
    if (!run) {
      run = { id, order: (this.order += 1), owner: null, inputId: null, state: 'streaming', reason: null, error: null, outputs: new Map() };
      this.runs.set(id, run);
    }
    run.owner = run.owner || transport['run-client-id'] || null;
    run.inputId = run.inputId || transport['input-codec-message-id'] || null;
    run.regenerates = run.regenerates || transport['msg-regenerate'] || null;
    run.forkOf = run.forkOf || transport['fork-of'] || null;
    return run;
  }

  /** Turns in the order they began: an input with the runs answering it (or a run alone). */
  turns() {
    const byInput = new Map();
    const loose = [];
    for (const run of this.runs.values()) {
      if (run.inputId && this.inputs.has(run.inputId)) {
        if (!byInput.has(run.inputId)) byInput.set(run.inputId, []);
        byInput.get(run.inputId).push(run);
      } else loose.push({ order: run.order, input: null, runs: [run] });
    }
    const turns = [...this.inputs.values()].map((input) => ({ order: input.order, input, runs: byInput.get(input.id) || [] }));
    return [...turns, ...loose].sort((a, b) => a.order - b.order);
  }

  /** Text of the message `codecMessageId` names, an input or a run's output, for branch labels. */
  describe(codecMessageId) {
    const input = this.inputs.get(codecMessageId);
    if (input) return inputText(input);
    const run = [...this.runs.values()].find((r) => r.messageId === codecMessageId);
    return run ? runText(run) : codecMessageId;
  }

  branches() {
    return {
      edits: [...this.inputs.values()].filter((i) => i.forkOf).length,
      regenerations: [...this.inputs.values()].filter((i) => i.regenerates).length,
    };
  }
}

export function inputText(input) {
  return [...input.parts.values()].join('');
}

/** The answer a run streamed: its text parts (reasoning and tool input are parts of other kinds). */
export function runText(run) {
  return [...run.outputs.values()]
    .filter((part) => part.kind === 'text')
    .map((part) => part.text)
    .join('');
}
