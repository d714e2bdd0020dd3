// Reading messages as a person would: data decoded through its encoding, JSON pretty-printed,
// binary shown as its size and a hex dump, and Ably's message actions named.

export const MESSAGE_ACTIONS = ['create', 'update', 'delete', 'meta', 'summary', 'append'];
export const PRESENCE_ACTIONS = ['absent', 'present', 'enter', 'leave', 'update'];
const HEX_BYTES = 64;

/** The name of a message's action; the wire may carry the number or Ably's string. */
export function actionName(action, names = MESSAGE_ACTIONS) {
  if (typeof action === 'number') return names[action] ?? String(action);
  if (typeof action === 'string') return action.replace(/^message\./, '');
  return names[0];
}

/**
 * {kind: 'empty'|'text'|'json'|'binary'|'encoded', value, encoding} from a message's data and
 * encoding, undoing the steps from the last (base64, utf-8, json); a step it cannot undo
 * (cipher, vcdiff) stops it and the rest of the encoding is reported.
 */
export function decodeData(data, encoding) {
  if (data === undefined || data === null) return { kind: 'empty' };
  const steps = encoding ? encoding.split('/') : [];
  let value = data;
  while (steps.length) {
    const step = steps[steps.length - 1];
    if (step === 'base64' && typeof value === 'string') value = fromBase64(value);
    else if (step === 'utf-8' && value instanceof Uint8Array) value = new TextDecoder().decode(value);
    else if (step === 'json' && typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        break;
      }
    } else break;
    steps.pop();
  }
  if (steps.length) return { kind: 'encoded', value, encoding: steps.join('/') };
  if (value instanceof Uint8Array) return { kind: 'binary', value };
  if (typeof value === 'string') return { kind: 'text', value };
  return { kind: 'json', value };
}

/** Plain text of decoded data, for AI Transport text and short summaries. */
export function dataText(decoded) {
  if (decoded.kind === 'text') return decoded.value;
  if (decoded.kind === 'empty') return '';
  if (decoded.kind === 'binary') return `(${decoded.value.length} bytes)`;
  return JSON.stringify(decoded.value);
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** An element showing decoded data: <pre> with highlighted JSON, text, or a hex dump. */
export function renderData(decoded) {
  const pre = document.createElement('pre');
  pre.className = `data data-${decoded.kind}`;
  if (decoded.kind === 'empty') {
    pre.textContent = '(no data)';
  } else if (decoded.kind === 'json') {
    pre.append(...highlightJson(decoded.value));
  } else if (decoded.kind === 'binary') {
    pre.textContent = `binary, ${decoded.value.length} bytes\n${hexDump(decoded.value)}`;
  } else if (decoded.kind === 'encoded') {
    pre.textContent = `still encoded as ${decoded.encoding}:\n${String(decoded.value instanceof Uint8Array ? hexDump(decoded.value) : decoded.value)}`;
  } else {
    pre.textContent = decoded.value === '' ? '(empty string)' : decoded.value;
  }
  return pre;
}

export function hexDump(bytes) {
  const lines = [];
  const shown = bytes.subarray(0, HEX_BYTES);
  for (let offset = 0; offset < shown.length; offset += 16) {
    const row = Array.from(shown.subarray(offset, offset + 16));
    const hex = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${offset.toString(16).padStart(4, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > HEX_BYTES) lines.push(`… ${bytes.length - HEX_BYTES} more bytes`);
  return lines.join('\n');
}

/** Nodes of pretty-printed JSON, keys, strings, numbers and literals in their own spans. */
export function highlightJson(value) {
  const text = JSON.stringify(value, null, 2);
  const nodes = [];
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const match of text.matchAll(token)) {
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    const span = document.createElement('span');
    if (match[1]) span.className = match[2] ? 'json-key' : 'json-string';
    else span.className = match[3] ? 'json-literal' : 'json-number';
    span.textContent = match[1] ?? match[0];
    nodes.push(span);
    if (match[2]) nodes.push(document.createTextNode(match[2]));
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

export function formatTime(ms) {
  if (!ms) return '';
  const date = new Date(ms);
  return date.toLocaleTimeString([], { hour12: false }) + '.' + String(date.getMilliseconds()).padStart(3, '0');
}
