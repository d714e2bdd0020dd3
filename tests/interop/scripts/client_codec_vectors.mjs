// Golden vectors for the Python codecs, made by @ably/ai-transport's own encoder and decoder.
// args.codec picks the codec: "vercel" (createUIMessageCodec()), "openai" (ResponsesCodec) or
// "poem" (a custom codec declared with defineCodec: lib/poem_codec.mjs).
// Every case of the corpus (args.corpus: its path) goes through
// `codec.createEncoder(writer, {extras: {headers}, messageId})` with a writer
// that records each channel operation; each recorded message is put in wire form as ably-js
// sends it on the JSON protocol (object data as JSON.stringify text with encoding "json") and
// reported as its exact JSON text. The recorded messages are then delivered, as the relay
// delivers them (create, then appends with growing version serials), to a fresh decoder
// whose outputs and inputs are reported too. The corpus's `rejects` are events the encoder
// refuses. No relay is involved.
// For the OpenAI codec each case's decoded events are also folded by the codec's reducer
// (`fold` / `getMessages`, keyed by the codec-message-id header, as a session does), and the
// corpus's `conversations` (messages published in turn: {codecMessageId, outputs, cancel?} or
// {codecMessageId, input}, all read by one decoder into one projection) report their messages,
// `toResponsesInput` of them and the call helpers' answers; with `joinAt: k` also the messages
// of a reader joining at the k-th published message (`lateMessages`): the relay gives it a
// stream opened before as a message.update with the text so far, then the later appends.
import { readFileSync } from 'node:fs';

import {
  approvedUnexecutedCalls,
  resolvedCallIds,
  ResponsesCodec,
  toResponsesInput,
  unansweredCalls,
} from '@ably/ai-transport/openai';
import { createUIMessageCodec } from '@ably/ai-transport/vercel';

import { poemCodec } from '../lib/poem_codec.mjs';
import { args, run } from '../lib/relay.mjs';

const codec = { vercel: () => createUIMessageCodec(), openai: () => ResponsesCodec, poem: () => poemCodec }[args.codec]();

/** The message as ably-js puts it on the JSON wire. */
function wire(message) {
  const out = {};
  if (message.name !== undefined) out.name = message.name;
  if (message.data !== undefined && message.data !== null) {
    if (typeof message.data === 'string') {
      out.data = message.data;
    } else {
      out.data = JSON.stringify(message.data);
      out.encoding = 'json';
    }
  }
  if (message.extras !== undefined) out.extras = message.extras;
  return out;
}

/** A writer that records operations; publishes get serials "s0001", "s0002", ... */
function recorder() {
  const writes = [];
  let next = 0;
  const serialOf = new Map();
  return {
    writes,
    serialOf,
    async publish(messages) {
      const list = Array.isArray(messages) ? messages : [messages];
      const serials = list.map(() => `s${String(++next).padStart(4, '0')}`);
      writes.push({ op: 'publish', serials, messages: list.map((m) => JSON.stringify(wire(m))) });
      return { serials };
    },
    async appendMessage(message) {
      writes.push({ op: 'append', serial: message.serial, messages: [JSON.stringify(wire(message))] });
      return { versionSerial: null };
    },
    async updateMessage(message) {
      writes.push({ op: 'update', serial: message.serial, messages: [JSON.stringify(wire(message))] });
      return { versionSerial: null };
    },
  };
}

/** Deliver the recorded operations to a decoder (a fresh one unless given), as a subscriber
 * sees them live; each result carries the codec-message-id its message named (an append
 * belongs to the message its serial opened). */
function decodeAll(writes, decoder = codec.createDecoder(), cmids = new Map()) {
  const decoded = [];
  let version = 0;
  for (const write of writes) {
    write.messages.forEach((text, i) => {
      const raw = JSON.parse(text);
      const data = raw.encoding === 'json' ? JSON.parse(raw.data) : raw.data;
      const serial = write.op === 'publish' ? write.serials[i] : write.serial;
      const versionSerial = write.op === 'publish' ? serial : `${serial}:v${String(++version).padStart(4, '0')}`;
      const action = { publish: 'message.create', append: 'message.append', update: 'message.update' }[write.op];
      const result = decoder.decode({ name: raw.name, data, extras: raw.extras, serial, action, version: { serial: versionSerial } });
      const cmid = raw.extras?.ai?.transport?.['codec-message-id'] ?? cmids.get(serial);
      if (cmid !== undefined) cmids.set(serial, cmid);
      Object.defineProperty(result, 'cmid', { value: cmid, enumerable: false });
      decoded.push(result);
    });
  }
  return decoded;
}

/** Fold decoded messages into `projection` as a session does, serial order, by codec-message-id. */
function foldAll(decoded, projection = codec.init()) {
  decoded.forEach((result, i) => {
    const meta = { serial: `s${String(i + 1).padStart(4, '0')}`, messageId: result.cmid };
    for (const event of result.inputs) codec.fold(projection, { direction: 'input', event }, meta);
    for (const event of result.outputs) codec.fold(projection, { direction: 'output', event }, meta);
  });
  return projection;
}

const plain = (decoded) => decoded.map(({ inputs, outputs }) => ({ inputs, outputs }));

/** The writes a reader joining at the `k`-th message sees (one message per write). */
function joinedAt(writes, k) {
  const flat = writes.flatMap((w) =>
    w.op === 'publish' ? w.messages.map((text, i) => ({ op: 'publish', serials: [w.serials[i]], messages: [text] })) : [w],
  );
  const text = new Map();
  const names = new Map();
  const seen = new Set();
  const out = [];
  flat.forEach((write, i) => {
    const raw = JSON.parse(write.messages[0]);
    const serial = write.op === 'publish' ? write.serials[0] : write.serial;
    if (write.op === 'publish') names.set(serial, raw.name);
    text.set(serial, (write.op === 'publish' ? '' : text.get(serial)) + (raw.data ?? ''));
    if (i < k) return;
    if (write.op === 'append' && !seen.has(serial)) {
      // The aggregated message: the create's name, the latest extras, all the text.
      const update = { name: names.get(serial), ...raw, data: text.get(serial) };
      out.push({ op: 'update', serial, messages: [JSON.stringify(update)] });
    } else {
      out.push(write);
    }
    seen.add(serial);
  });
  return out;
}

/** A conversation published message by message, read by one decoder into one projection. */
async function conversation(item) {
  const writer = recorder();
  for (const step of item.messages) {
    const encoder = codec.createEncoder(writer, { extras: { headers: step.headers ?? {} } });
    if (step.input) {
      await encoder.publishInput(step.input, { extras: { headers: step.headers ?? {} }, messageId: step.codecMessageId });
    } else {
      for (const event of step.outputs) await encoder.publishOutput(event, { messageId: step.codecMessageId });
      if (step.cancel) await encoder.cancelStreams();
    }
    await encoder.close();
  }
  const messages = codec.getMessages(foldAll(decodeAll(writer.writes)));
  const items = messages.map((m) => m.message);
  const late = item.joinAt === undefined ? {} : { lateMessages: codec.getMessages(foldAll(decodeAll(joinedAt(writer.writes, item.joinAt)))) };
  return {
    ...late,
    name: item.name,
    messages,
    responsesInput: toResponsesInput(items),
    resolvedCallIds: [...resolvedCallIds(items)].sort(),
    unansweredCalls: unansweredCalls(items),
    approvedUnexecutedCalls: approvedUnexecutedCalls(items),
  };
}

run(async () => {
  const corpus = JSON.parse(readFileSync(args.corpus, 'utf8'));
  const outputs = [];
  for (const item of corpus.outputs) {
    const writer = recorder();
    const options = { extras: { headers: item.headers } };
    if (item.messageId !== null) options.messageId = item.messageId;
    const encoder = codec.createEncoder(writer, options);
    for (const chunk of item.chunks) await encoder.publishOutput(chunk, { messageId: item.codecMessageId });
    if (item.cancel) await encoder.cancelStreams();
    await encoder.close();
    const decoded = decodeAll(writer.writes);
    const out = { name: item.name, writes: writer.writes, decoded: plain(decoded) };
    if (args.codec === 'openai') out.messages = codec.getMessages(foldAll(decoded));
    outputs.push(out);
  }
  const inputs = [];
  for (const item of corpus.inputs) {
    const writer = recorder();
    const encoder = codec.createEncoder(writer);
    await encoder.publishInput(item.input, { extras: { headers: item.headers }, messageId: item.codecMessageId });
    const decoded = decodeAll(writer.writes);
    const out = { name: item.name, writes: writer.writes, decoded: plain(decoded) };
    if (args.codec === 'openai') out.messages = codec.getMessages(foldAll(decoded));
    inputs.push(out);
  }
  // Events the encoder refuses: the Ably error code it throws, nothing written.
  const rejects = [];
  for (const item of corpus.rejects ?? []) {
    const writer = recorder();
    const encoder = codec.createEncoder(writer);
    let code = null;
    try {
      if (item.input) await encoder.publishInput(item.input);
      else await encoder.publishOutput(item.output);
    } catch (error) {
      code = error.code;
    }
    rejects.push({ name: item.name, code, writes: writer.writes });
  }
  const conversations = [];
  for (const item of corpus.conversations ?? []) conversations.push(await conversation(item));
  return { outputs, inputs, rejects, conversations };
});
