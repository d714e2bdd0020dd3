// revokeTokens by clientId: the live connection using a matching token is disconnected with
// 40141 and renews; another clientId's connection is untouched; revoking with a token is refused.
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, outcome, recordStates, sleep, stateChange, tokenRealtime, tokenRest } from '../lib/auth.mjs';

run(async () => {
  const admin = rest();
  const victimSource = countingCallback((params) => admin.auth.requestToken({ ...params, clientId: 'revokee' }));
  const victim = tokenRealtime({ authCallback: victimSource.authCallback });
  const bystander = tokenRealtime({
    authCallback: (params, cb) => admin.auth.requestToken({ clientId: 'bystander' }).then((t) => cb(null, t), cb),
  });
  const victimStates = recordStates(victim);
  const bystanderStates = recordStates(bystander);
  await Promise.all([connected(victim), connected(bystander)]);
  const channel = victim.channels.get(args.channel);
  await channel.attach();
  const connectionId = victim.connection.id;
  const revokedToken = victim.auth.tokenDetails.token;

  const dropped = stateChange(victim, 'disconnected', 5000);
  const result = await admin.auth.revokeTokens([{ type: 'clientId', value: 'revokee' }]);
  const disconnected = await dropped;
  await stateChange(victim, 'connected', 5000);
  await sleep(200);
  const callbackCalls = victimSource.calls();

  // REST with the revoked token literal: the relay refuses it with a token error, and ably-js,
  // having no way to renew a literal, reports 40171.
  const literal = await outcome(tokenRest({ token: revokedToken }).channels.get(args.channel).history());

  // Revoking needs the key itself: ably-js refuses a token client before sending (40162), and
  // the relay refuses the same request sent with a token.
  const tokenClient = tokenRest({ authCallback: victimSource.authCallback });
  const sdkRefusal = await outcome(tokenClient.auth.revokeTokens([{ type: 'clientId', value: 'bystander' }]));
  const raw = await tokenClient.request('post', `/keys/${args.keyName}/revokeTokens`, 3, null, {
    targets: ['clientId:bystander'],
  });

  return {
    result: {
      successCount: result.successCount,
      failureCount: result.failureCount,
      targets: result.results.map((r) => r.target),
    },
    revokedToken,
    disconnected,
    victimStates: victimStates.map((s) => [s.current, s.reason && s.reason.code]),
    bystanderStates: bystanderStates.map((s) => s.current),
    sameConnection: victim.connection.id === connectionId,
    renewedWith: victim.auth.tokenDetails.token !== revokedToken,
    callbackCalls,
    channelState: channel.state,
    literal,
    sdkRefusal,
    relayRefusal: { statusCode: raw.statusCode, errorCode: raw.errorCode ?? null, success: raw.success },
  };
});
