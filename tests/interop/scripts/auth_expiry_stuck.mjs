// A client whose authCallback can only hand back the token it has: asked to renew before
// expiry (the relay's AUTH), it presents the same token again, and at expiry the relay drops it
// with DISCONNECTED 40142.
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, stateChange, tokenRealtime } from '../lib/auth.mjs';

run(async () => {
  const admin = rest();
  let only;
  const source = countingCallback(async (params) => {
    only ??= await admin.auth.requestToken({ ...params, ttl: args.ttl, clientId: 'stuck' });
    return only;
  });
  const client = tokenRealtime({ authCallback: source.authCallback });
  await connected(client);
  const dropped = await stateChange(client, 'disconnected', args.ttl + 5000);
  return {
    disconnected: dropped,
    droppedAt: Date.now(),
    expires: only.expires,
    callbackCalls: source.calls(),
  };
});
