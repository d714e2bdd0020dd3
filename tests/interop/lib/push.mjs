// Push activation in node, for tests: ably-js activates only in browsers and React Native, so
// this stands in for the platform's push service the way ably-js's own test suite does. The
// device's recipient is Ably's `ablyChannel` transport: its notifications are published on a
// channel (as `__ably_push__`), where a test can see them.
import { Ably } from './relay.mjs';

const values = new Map();

const channelPushPlatform = {
  getPushDeviceDetails(machine) {
    const options = machine.client.options;
    if (!options.pushRecipientChannel) {
      const error = new Ably.ErrorInfo('Missing ClientOptions.pushRecipientChannel', 40000, 400);
      machine.handleEvent(new machine.GettingPushDeviceDetailsFailed(error));
      return;
    }
    const device = machine.client.device();
    device.push.recipient = {
      transportType: 'ablyChannel',
      channel: options.pushRecipientChannel,
      ablyKey: options.key,
      ablyUrl: `http://localhost:${options.port}`,
    };
    device.persist();
    machine.handleEvent(new machine.GotPushDeviceDetails());
  },
  storage: {
    set: (name, value) => values.set(name, value),
    get: (name) => values.get(name),
    remove: (name) => values.delete(name),
    clear: () => values.clear(),
  },
  platform: 'browser',
  formFactor: 'desktop',
};

/** Make push.activate() work in this node process (Platform.Config.push is a test seam). */
export function enableChannelPush() {
  Ably.Realtime.Platform.Config.push = channelPushPlatform;
}
