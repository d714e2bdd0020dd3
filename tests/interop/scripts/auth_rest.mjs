// REST and connect-time credential errors as ably-js reports them, and realtime token renewal
// after a token error: args.expiredJwt / args.malformedJwt are refused, args.goodJwt works.
//
// REST renewal is not exercised: on a 4014x ably-js 2.28.0 renews the token but re-sends the old
// Authorization header (resource.ts withAuthDetails mixes the previous headers over the new
// ones), so it retries for ever whatever the server does.
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, outcome, recordStates, tokenRealtime, tokenRest } from '../lib/auth.mjs';

/** A realtime client whose authCallback first returns `bad`, then args.goodJwt. */
async function renewsAfter(bad) {
  const source = countingCallback((params, call) => (call === 1 ? bad : args.goodJwt));
  const client = tokenRealtime({ authCallback: source.authCallback });
  const states = recordStates(client);
  await connected(client);
  return {
    states: states.map((s) => [s.current, s.reason && s.reason.code, s.reason && s.reason.statusCode]),
    calls: source.calls(),
  };
}

run(async () => {
  const admin = rest();
  const details = await admin.auth.requestToken({ clientId: 'bearer-user' });
  const bearer = tokenRest({ tokenDetails: details }).channels.get(args.channel);
  const bearerPublish = await outcome(bearer.publish('bearer', 'x'));
  const bearerHistory = (await bearer.history()).items.map((m) => [m.name, m.clientId ?? null]);

  const nonce = `nonce-${Date.now()}`;
  // A replay is the same TokenRequest again: same nonce, same timestamp.
  const timestamp = Date.now();
  return {
    bearerPublish,
    bearerHistory,
    wrongSecret: await outcome(rest({ key: args.wrongKey }).channels.get(args.channel).history()),
    expired: await renewsAfter(args.expiredJwt),
    malformed: await renewsAfter(args.malformedJwt),
    staleTimestamp: await outcome(admin.auth.requestToken({ timestamp: Date.now() - 10 * 60 * 1000 })),
    firstNonce: await outcome(admin.auth.requestToken({ nonce, timestamp })),
    replayedNonce: await outcome(admin.auth.requestToken({ nonce, timestamp })),
    nonceAtAnotherTime: await outcome(admin.auth.requestToken({ nonce, timestamp: timestamp + 1 })),
  };
});
