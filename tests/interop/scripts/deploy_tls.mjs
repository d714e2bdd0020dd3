// TLS round trip: realtime over wss:// and REST over https:// with tls: true, trusting the
// relay's certificate only through NODE_EXTRA_CA_CERTS.
import { run, realtime, rest, connected, collect } from '../lib/relay.mjs';
import { tlsOptions } from '../lib/tls.mjs';

run(async () => {
  const client = realtime(tlsOptions());
  await connected(client);
  const channel = client.channels.get('secure');
  const got = collect(channel, 2);
  await got.attached;
  await channel.publish('realtime', 'over wss');
  const api = rest(tlsOptions());
  await api.channels.get('secure').publish('rest', 'over https');
  const messages = await got.done;
  const page = await api.channels.get('secure').history({ direction: 'forwards' });
  return {
    transport: client.connection.connectionManager.activeProtocol?.getTransport()?.uri?.split(':')[0] ?? null,
    received: messages.map((m) => m.data),
    history: page.items.map((m) => m.data),
    time: (await api.time()) > 0,
  };
});
