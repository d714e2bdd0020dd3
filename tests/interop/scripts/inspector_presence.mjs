// Two devices of one user in presence (tests/interop/test_interop_inspector.py): alice enters
// from two connections, reports their connectionIds as `EVENT {ev:'entered', ...}`, and stays
// until a message arrives on args.gate, so the test can look at the page meanwhile.
import { args, connected, realtime, run } from '../lib/relay.mjs';
import { gate } from './inspector_common.mjs';
import { event } from './presence_common.mjs';

run(async () => {
  const phone = realtime({ clientId: 'alice' });
  const laptop = realtime({ clientId: 'alice' });
  await Promise.all([connected(phone), connected(laptop)]);
  const { opened } = await gate(phone, args.gate);
  await phone.channels.get(args.channel).presence.enter({ device: 'phone' });
  await laptop.channels.get(args.channel).presence.enter({ device: 'laptop' });
  event({ ev: 'entered', connectionIds: [phone.connection.id, laptop.connection.id] });
  await opened;
  return { connectionIds: [phone.connection.id, laptop.connection.id] };
});
