// A token revoked through node A (args.revokePort) while a client using it is connected to node B
// (RELAY_PORT): the client is disconnected with 40141 at once and renews its token.
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, recordStates, stateChange, tokenRealtime } from '../lib/auth.mjs';

run(async () => {
  const onB = rest();
  const onA = rest({ port: args.revokePort });
  const source = countingCallback((params) => onB.auth.requestToken({ ...params, clientId: 'revokee' }));
  const victim = tokenRealtime({ authCallback: source.authCallback });
  const states = recordStates(victim);
  await connected(victim);
  await victim.channels.get(args.channel).attach();
  const revokedToken = victim.auth.tokenDetails.token;

  const dropped = stateChange(victim, 'disconnected', 10000);
  const sent = Date.now();
  const result = await onA.auth.revokeTokens([{ type: 'clientId', value: 'revokee' }]);
  const answered = Date.now();
  const disconnected = await dropped;
  const droppedAt = Date.now();
  await stateChange(victim, 'connected', 10000);
  return {
    successCount: result.successCount,
    revokedToken,
    disconnected,
    answeredMs: answered - sent,
    droppedMs: droppedAt - answered,
    states: states.map((s) => [s.current, s.reason && s.reason.code]),
    renewed: victim.auth.tokenDetails.token !== revokedToken,
  };
});
