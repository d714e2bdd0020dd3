// Helpers for the auth interop scripts: token-authenticated clients, state recording, channel errors.
//
// A client built here never holds the API key: it authenticates only with what its authCallback,
// authUrl or token literal gives it, so every capability and clientId check is the relay's.

import { errorInfo, realtime, rest, withTimeout } from './relay.mjs';

/** A Realtime client that authenticates with tokens only (authCallback, authUrl or token). */
export function tokenRealtime(overrides) {
  return realtime({ key: undefined, ...overrides });
}

/** A Rest client that authenticates with tokens only. */
export function tokenRest(overrides) {
  return rest({ key: undefined, ...overrides });
}

/**
 * An authCallback that calls `make(tokenParams, calls)` (sync or async) and counts its calls.
 * Returns {authCallback, calls: () => number}.
 */
export function countingCallback(make) {
  let calls = 0;
  const authCallback = (tokenParams, callback) => {
    calls += 1;
    Promise.resolve()
      .then(() => make(tokenParams, calls))
      .then(
        (result) => callback(null, result),
        (err) => callback(err, null),
      );
  };
  return { authCallback, calls: () => calls };
}

/** Record every connection state change as {current, previous, reason}. */
export function recordStates(client) {
  const changes = [];
  client.connection.on((change) => {
    changes.push({ current: change.current, previous: change.previous, reason: errorInfo(change.reason) });
  });
  return changes;
}

/** Resolve with the first state change to `state` whose reason satisfies `accept` (default: any). */
export function stateChange(client, state, ms, accept = () => true) {
  return withTimeout(
    new Promise((resolve) => {
      const listener = (change) => {
        if (change.current === state && accept(change)) {
          client.connection.off(listener);
          resolve({ current: change.current, reason: errorInfo(change.reason) });
        }
      };
      client.connection.on(listener);
    }),
    `connection state ${state}`,
    ms,
  );
}

/** Resolve when `channel` reaches `state` (immediately if it is there already). */
export function channelState(channel, state, ms) {
  if (channel.state === state) return Promise.resolve({ current: state, reason: errorInfo(channel.errorReason) });
  return withTimeout(
    new Promise((resolve) => {
      const listener = (change) => {
        if (change.current === state) {
          channel.off(listener);
          resolve({ current: state, reason: errorInfo(change.reason) });
        }
      };
      channel.on(listener);
    }),
    `channel ${channel.name} ${state}`,
    ms,
  );
}

/** The next message on `channel` whose name is `name`. */
export function nextMessage(channel, name, ms) {
  return withTimeout(
    new Promise((resolve) => {
      const listener = (message) => {
        channel.unsubscribe(name, listener);
        resolve(message);
      };
      channel.subscribe(name, listener);
    }),
    `message ${name} on ${channel.name}`,
    ms,
  );
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Await `promise`: {resolved: true} if it succeeds, else the ErrorInfo fields it rejected with. */
export async function outcome(promise) {
  try {
    await promise;
    return { resolved: true };
  } catch (err) {
    return errorInfo(err);
  }
}
