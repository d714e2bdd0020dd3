// revokeTokens with allowReauthMargin: every connection using a matching token is told to renew
// (an AUTH from the relay) at once. One that renews stays connected past appliesAt on the same
// connection; one whose authCallback can only hand back the revoked token is dropped with 40141
// when the revocation comes into force, not before.
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, recordStates, sleep, stateChange, tokenRealtime } from '../lib/auth.mjs';

run(async () => {
  const admin = rest();
  const renewing = countingCallback((params) => admin.auth.requestToken({ ...params, clientId: 'renewer' }));
  let only;
  const stuck = countingCallback(async (params) => {
    only ??= await admin.auth.requestToken({ ...params, clientId: 'stuck' });
    return only;
  });
  const renewer = tokenRealtime({ authCallback: renewing.authCallback });
  const holder = tokenRealtime({ authCallback: stuck.authCallback });
  await Promise.all([connected(renewer), connected(holder)]);
  const renewerId = renewer.connection.id;
  const renewerStates = recordStates(renewer);
  const holderStates = recordStates(holder);

  const dropped = stateChange(holder, 'disconnected', args.marginMs + 5000);
  const result = await admin.auth.revokeTokens(
    [
      { type: 'clientId', value: 'renewer' },
      { type: 'clientId', value: 'stuck' },
    ],
    { allowReauthMargin: true },
  );
  const revokedAt = Date.now();
  const disconnected = await dropped;
  const droppedAt = Date.now();
  await sleep(500);

  return {
    appliesAt: result.results.map((r) => r.appliesAt),
    revokedAt,
    droppedAt,
    disconnected,
    renewerCalls: renewing.calls(),
    renewerStates: renewerStates.map((s) => s.current),
    renewerState: renewer.connection.state,
    sameConnection: renewer.connection.id === renewerId,
    holderStatesBeforeDrop: holderStates.slice(0, 1).map((s) => s.current),
  };
});
