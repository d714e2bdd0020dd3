// One token flow end to end through ably-js: realtime connect, publish and receive, then REST
// publish and history, all authenticated only by what the flow hands back.
//   args.flow: "jwt" (authCallback -> args.jwt), "tokenRequest" (authCallback -> a TokenRequest
//   from auth.createTokenRequest), "tokenDetails" (authCallback -> TokenDetails from
//   auth.requestToken), "authUrl" (args.authUrl answers with a JWT, TokenRequest or TokenDetails).
import { args, connected, rest, run } from '../lib/relay.mjs';
import { countingCallback, nextMessage, tokenRealtime, tokenRest } from '../lib/auth.mjs';

function authOptions() {
  const keyClient = rest();
  switch (args.flow) {
    case 'jwt':
      return countingCallback(() => args.jwt);
    case 'tokenRequest':
      return countingCallback((params) => keyClient.auth.createTokenRequest({ ...params, clientId: args.clientId }));
    case 'tokenDetails':
      return countingCallback((params) => keyClient.auth.requestToken({ ...params, clientId: args.clientId }));
    case 'authUrl':
      return { authUrl: args.authUrl, calls: () => null };
    default:
      throw new Error(`unknown flow ${args.flow}`);
  }
}

run(async () => {
  const source = authOptions();
  const options = source.authUrl ? { authUrl: source.authUrl } : { authCallback: source.authCallback };

  const client = tokenRealtime(options);
  await connected(client);
  const channel = client.channels.get(args.channel);
  await channel.attach();
  const arrival = nextMessage(channel, 'realtime');
  const published = await channel.publish('realtime', `via ${args.flow}`);
  const message = await arrival;

  const restClient = tokenRest(options);
  const restChannel = restClient.channels.get(args.channel);
  await restChannel.publish('rest', `via ${args.flow}`);
  const history = await restChannel.history({ direction: 'forwards' });

  return {
    authClientId: client.auth.clientId ?? null,
    tokenDetails: {
      token: client.auth.tokenDetails?.token ?? null,
      clientId: client.auth.tokenDetails?.clientId ?? null,
    },
    connectionId: client.connection.id,
    serials: published.serials,
    received: { clientId: message.clientId ?? null, data: message.data, connectionId: message.connectionId },
    history: history.items.map((m) => ({ name: m.name, clientId: m.clientId ?? null })),
    callbackCalls: source.calls(),
  };
});
