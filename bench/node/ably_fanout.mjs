// Fan-out through unmodified ably-js: N subscriber clients and 1 publisher client (msgpack, the
// node default) on one channel of the relay; prints one JSON line with delivery checks and latency.
// Usage: node ably_fanout.mjs '{"module": ".../node_modules/ably", "port": P, "key": K,
//                               "subscribers": N, "rate": R, "seconds": S, "channel": C}'
import { createRequire } from 'node:module';

const args = JSON.parse(process.argv[2]);
const require = createRequire(import.meta.url);
const Ably = require(args.module);
const hardStop = setTimeout(() => { console.log(JSON.stringify({ error: 'time limit' })); process.exit(2); },
  (args.seconds + 60) * 1000);

const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
const opts = { key: args.key, endpoint: 'localhost', port: args.port, tls: false,
  disableConnectivityCheck: true, logLevel: 0 };

function connected(client) {
  return new Promise((resolve, reject) => {
    client.connection.once('connected', resolve);
    client.connection.once('failed', (s) => reject(new Error(String(s.reason))));
  });
}

const latencies = [];
const subs = [];
const t0 = Date.now();
for (let i = 0; i < args.subscribers; i++) {
  const client = new Ably.Realtime(opts);
  const state = { expected: 0, received: 0, lost: 0, dups: 0 };
  subs.push({ client, state });
}
await Promise.all(subs.map((s) => connected(s.client)));
await Promise.all(subs.map(({ client, state }) => client.channels.get(args.channel).subscribe((msg) => {
  const [seqStr, tStr] = String(msg.data).split(' ');
  const seq = Number(seqStr);
  latencies.push(Number(nowNs() - BigInt(tStr)) / 1e6);
  state.received++;
  if (seq === state.expected) state.expected++;
  else if (seq > state.expected) { state.lost += seq - state.expected; state.expected = seq + 1; }
  else state.dups++;
})));
const connectMs = Date.now() - t0;
const publisher = new Ably.Realtime({ ...opts, echoMessages: false });
await connected(publisher);
const channel = publisher.channels.get(args.channel);
await channel.attach();
const total = Math.round(args.rate * args.seconds);
const acks = [];
const start = performance.now();
for (let seq = 0; seq < total; seq++) {
  const due = start + (seq * 1000) / args.rate;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  acks.push(channel.publish('m', `${seq} ${nowNs()}`));
}
await Promise.all(acks);
const deadline = Date.now() + 10000;
while (Date.now() < deadline && subs.some((s) => s.state.expected < total)) {
  await new Promise((r) => setTimeout(r, 20));
}
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * p / 100) - 1)] : null);
const result = { published: total, subscribers: subs.length, connect_ms: connectMs, delivered: 0, lost: 0,
  dups: 0, reordered: 0, p50_ms: pct(50), p99_ms: pct(99), max_ms: pct(100) };
for (const { state } of subs) {
  result.delivered += state.received;
  result.lost += state.lost + Math.max(0, total - state.expected);
  result.dups += state.dups;
}
for (const client of [publisher, ...subs.map((s) => s.client)]) client.close();
clearTimeout(hardStop);
console.log(JSON.stringify(result));
setTimeout(() => process.exit(0), 200);
