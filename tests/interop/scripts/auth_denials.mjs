// Everything a token from the "limited" key may not do, each refusal reported as the ErrorInfo
// ably-js hands the application, next to a control that the same client may do the allowed thing.
//   args.limitedKey: the key whose capability bounds alice's tokens (createTokenRequest, clientId alice)
//   args.aliceJwt: a JWT for clientId alice (for the connect-time clientId mismatch)
import { args, connected, realtime, rest, run } from '../lib/relay.mjs';
import { channelState, countingCallback, nextMessage, outcome, tokenRealtime, tokenRest } from '../lib/auth.mjs';

run(async () => {
  const signer = rest({ key: args.limitedKey });
  const { authCallback } = countingCallback((params) => signer.auth.createTokenRequest({ ...params, clientId: 'alice' }));
  const alice = tokenRealtime({ authCallback });
  const aliceRest = tokenRest({ authCallback });
  const bob = realtime({ clientId: 'bob' });
  await Promise.all([connected(alice), connected(bob)]);
  const out = { clientId: alice.auth.clientId };

  // Publish without the publish op: NACK.
  out.publishDenied = await outcome(alice.channels.get('ro:pub').publish('x', 'denied'));

  // Attach and subscribe outside the capability: the channel fails.
  const secret = alice.channels.get('secret');
  out.attachDenied = await outcome(secret.attach());
  out.attachState = { state: secret.state, reason: secret.errorReason && secret.errorReason.code };
  const secretSub = alice.channels.get('secret-sub');
  out.subscribeDenied = await outcome(secretSub.subscribe(() => {}));
  out.subscribeState = secretSub.state;

  // History without the history op: REST and realtime untilAttach.
  out.restHistoryDenied = await outcome(aliceRest.channels.get('nohist').history());
  const nohist = alice.channels.get('nohist');
  await nohist.attach();
  out.untilAttachDenied = await outcome(nohist.history({ untilAttach: true }));
  const open = alice.channels.get('open');
  await open.attach();
  out.restHistoryAllowed = await outcome(aliceRest.channels.get('open').history());
  out.untilAttachAllowed = await outcome(open.history({ untilAttach: true }));

  // clientId: stamped from the token, another one refused.
  const anon = nextMessage(open, 'anon');
  await open.publish('anon', 'no clientId given');
  out.stamped = (await anon).clientId ?? null;
  out.ownClientId = await outcome(open.publish({ name: 'own', data: 'x', clientId: 'alice' }));
  out.spoofed = await outcome(open.publish({ name: 'spoof', data: 'x', clientId: 'mallory' }));
  out.afterSpoof = open.state;

  // Requested modes beyond the capability are not granted.
  const modes = alice.channels.get('ro:modes', { modes: ['publish', 'subscribe', 'presence'] });
  await modes.attach();
  out.modes = modes.modes ?? null;
  out.openModes = open.modes ?? null;

  // update/delete: -own only on alice's messages, -any on anyone's.
  const change = {};
  for (const name of ['mut:own', 'mut:any']) {
    const mine = alice.channels.get(name);
    const bobs = (await bob.channels.get(name).publish('bob', 'by bob')).serials[0];
    const own = (await mine.publish('alice', 'by alice')).serials[0];
    change[name] = {
      updateOthers: await outcome(mine.updateMessage({ serial: bobs, data: 'edited' })),
      updateOwn: await outcome(mine.updateMessage({ serial: own, data: 'edited' })),
      deleteOthers: await outcome(mine.deleteMessage({ serial: bobs })),
      deleteOwn: await outcome(mine.deleteMessage({ serial: own })),
    };
  }
  out.change = change;

  // A connect clientId that differs from the token's.
  const mismatch = tokenRealtime({ clientId: 'bob', authCallback: (params, cb) => cb(null, args.aliceJwt) });
  out.mismatch = await outcome(connected(mismatch));
  out.mismatchState = mismatch.connection.state;

  out.connectionState = alice.connection.state;
  out.openState = (await channelState(open, 'attached', 1000)).current;
  return out;
});
