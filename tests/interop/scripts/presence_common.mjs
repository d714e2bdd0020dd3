// Helpers shared by the presence interop scripts (tests/interop/test_interop_presence.py).
import { withTimeout } from '../lib/relay.mjs';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Print a progress line `EVENT {json}` (read by continuity_support.NodeProcess). */
export const event = (e) => process.stdout.write(`EVENT ${JSON.stringify(e)}\n`);

/** The fields of a PresenceMessage that tests compare. */
export function member(p) {
  return {
    action: p.action ?? null,
    clientId: p.clientId ?? null,
    connectionId: p.connectionId ?? null,
    data: p.data ?? null,
    id: p.id ?? null,
    timestamp: p.timestamp ?? null,
  };
}

/** A presence set in a canonical order, reduced to what every client must agree on. */
export function canonical(members) {
  return members
    .map((m) => ({ clientId: m.clientId, connectionId: m.connectionId, data: m.data ?? null }))
    .sort((a, b) => (`${a.clientId}:${a.connectionId}` < `${b.clientId}:${b.connectionId}` ? -1 : 1));
}

/** Record every presence event a channel delivers, in order. */
export function record(channel) {
  const events = [];
  const ready = channel.presence.subscribe((p) => events.push(member(p)));
  return { events, ready };
}

/** Poll presence.get() until `predicate(members)` holds; resolve with the members. */
export async function until(channel, predicate, what, ms) {
  return withTimeout(
    (async () => {
      for (;;) {
        const members = (await channel.presence.get()).map(member);
        if (predicate(members)) return members;
        await sleep(25);
      }
    })(),
    what,
    ms,
  );
}

/** Wait until `events` holds an event matching `predicate`. */
export async function seen(events, predicate, what, ms) {
  return withTimeout(
    (async () => {
      for (;;) {
        const found = events.find(predicate);
        if (found) return found;
        await sleep(10);
      }
    })(),
    what,
    ms,
  );
}

/**
 * Report `{ev:'settled'}` and, when `path` is given, wait until the test creates that file:
 * lets the test look at the relay while every client is still connected.
 */
export async function settled(path, ms) {
  event({ ev: 'settled' });
  if (!path) return;
  const { existsSync } = await import('node:fs');
  await withTimeout(
    (async () => {
      while (!existsSync(path)) await sleep(20);
    })(),
    `the test to release ${path}`,
    ms,
  );
}
