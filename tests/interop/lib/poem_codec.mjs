// The poem codec declared with @ably/ai-transport's own `defineCodec`: the same tables as
// tests/poem_codec.py declares with the Python `define_codec` (keep the two in step).
// Outputs: begin {messageId?}; lines streamed as line-start {id, voice?} / line-delta {id, text} /
// line-end; mood {value, score?}; aside {text} (a second message of the node); the note-* family
// {body?, pinned?}; end-poem {reason}; debug is dropped. Inputs: user-message (text and data-*
// parts), regenerate (wire only), rate {stars, comment}. The reducer folds user messages and the
// agent's events into messages per codec-message-id, an aside into its own message.
import { boolField, createLifecycleTracker, defineCodec, enumField, jsonField, strField } from '@ably/ai-transport';

const MOODS = ['calm', 'cheerful', 'grim'];
const textData = (key) => ({
  encode: (c) => c[key] ?? '',
  decode: (d) => (typeof d === 'string' ? { [key]: d } : {}),
});
const jsonData = (...keys) => ({
  encode: (c) => Object.fromEntries(keys.filter((k) => k in c).map((k) => [k, c[k]])),
  decode: (d) =>
    d !== null && typeof d === 'object' && !Array.isArray(d)
      ? Object.fromEntries(keys.filter((k) => k in d).map((k) => [k, d[k]]))
      : {},
});

function entryOf(state, cmid, seed) {
  let entry = state.byId.get(cmid);
  if (!entry) {
    entry = { main: seed, aside: null, lines: new Map() };
    state.byId.set(cmid, entry);
    state.order.push(cmid);
  }
  return entry;
}

const reducer = {
  init: () => ({ order: [], byId: new Map() }),
  fold: (state, event, meta) => {
    const cmid = meta.messageId;
    if (cmid === undefined) return state;
    if (event.direction === 'input') {
      const input = event.event;
      if (input.kind === 'user-message') {
        const entry = entryOf(state, cmid, { ...input.message, parts: [] });
        entry.main.parts.push(...input.message.parts);
      }
      return state;
    }
    const chunk = event.event;
    const entry = entryOf(state, cmid, { id: cmid, role: 'assistant', parts: [] });
    const main = entry.main;
    switch (chunk.type) {
      case 'begin':
        if (chunk.messageId) main.id = chunk.messageId;
        break;
      case 'line-start': {
        const part = { type: 'line', text: '', state: 'streaming' };
        if (chunk.voice !== undefined) part.voice = chunk.voice;
        entry.lines.set(chunk.id, part);
        main.parts.push(part);
        break;
      }
      case 'line-delta': {
        const line = entry.lines.get(chunk.id);
        if (line) line.text += chunk.text ?? '';
        break;
      }
      case 'line-end': {
        const line = entry.lines.get(chunk.id);
        if (line) line.state = 'done';
        break;
      }
      case 'mood': {
        const part = { type: 'mood', value: chunk.value };
        if (chunk.score !== undefined) part.score = chunk.score;
        main.parts.push(part);
        break;
      }
      case 'aside':
        entry.aside ??= { id: `${cmid}:aside`, role: 'assistant', parts: [] };
        entry.aside.parts.push({ type: 'aside', text: chunk.text ?? '' });
        break;
      case 'end-poem':
        main.finished = chunk.reason;
        break;
      default:
        if (chunk.type.startsWith('note-')) main.parts.push({ ...chunk });
    }
    return state;
  },
  getMessages: (state) =>
    state.order.flatMap((cmid) => {
      const entry = state.byId.get(cmid);
      const out = [{ codecMessageId: cmid, message: entry.main }];
      if (entry.aside) out.push({ codecMessageId: `${cmid}:aside`, message: entry.aside });
      return out;
    }),
};

export const poemCodec = defineCodec()({
  adapterTag: 'poem-codec',
  reducer,
  output: ({ event, stream, drop }) => [
    event('begin', { fields: [strField('messageId')] }),
    stream('line', {
      streamId: (c) => c.id,
      fields: [strField('id'), strField('voice')],
      start: { type: 'line-start' },
      delta: { type: 'line-delta', field: 'text', decode: ({ rebuild }) => rebuild([strField('id')]) },
      end: { type: 'line-end' },
    }),
    event('mood', { fields: [enumField('value', MOODS, 'calm'), jsonField('score')] }),
    event('aside', { data: textData('text') }),
    event('note-*', { fields: [boolField('pinned')], data: jsonData('body') }),
    event('end-poem', { fields: [enumField('reason', ['done', 'cut'], 'done')] }),
    // Tracing for the author's eyes only: no reader folds it.
    drop('debug'),
  ],
  input: ({ event, batch }) => [
    batch('user-message', {
      explode: (input) => input.message.parts ?? [],
      partTypeOf: (part) => part.type,
      parts: (p) => [
        p('text', { data: textData('text') }),
        p('data-*', { fields: [strField('id')], data: { encode: (part) => part.data, decode: (d) => ({ data: d }) } }),
      ],
      messageHeaders: (input) => ({
        codecHeaders: { messageId: input.message.id },
        transportHeaders: { role: input.message.role ?? 'user' },
      }),
      assemble: (part, ctx) => ({
        message: { id: ctx.codecHeaders.messageId ?? '', role: ctx.transportHeaders.role ?? 'user', parts: [part] },
      }),
    }),
    event('regenerate', { wireOnly: true }),
    event('rate', { fields: [jsonField('stars')], data: textData('comment') }),
  ],
  factories: (base) => base,
  decoderSynthesiseLifecycle: () => {
    const tracker = createLifecycleTracker([{ key: 'begin', build: () => [{ type: 'begin' }] }]);
    return {
      onDiscrete: {
        begin: (runId) => {
          tracker.markEmitted(runId, 'begin');
          return [];
        },
        'end-poem': (runId) => {
          tracker.clearScope(runId);
          return [];
        },
      },
      onStreamStart: (runId) => tracker.ensurePhases(runId, {}),
    };
  },
});
