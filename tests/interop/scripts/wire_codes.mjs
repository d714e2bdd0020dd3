// Answers ably-js's rest and realtime suites check code by code, one per run (args.check):
//   notFound    an unknown method on a known path: 404/40400 (rest/request request_404)
//   batchV2     batch publish to an API-version-2 client: a flat array
//               (rest/request request_batch_api_success)
//   recovery    a malformed recovery key: a new connection, 80018
//               (realtime/connection unrecoverableConnection)
//   unknownKey  an unknown key name on realtime: 40101 (realtime/failure invalid_cred_failure)
//   capability  a token's capability in the requested order (rest/capability)
//   forceNack   the `_forceNack` publish param: 40099 (ably-python test_publish_params)
//
// args: check, channel (a prefix), opsKey (capability: a key with several operations on "ops").
import { args, once, realtime, rejection, rest, run } from '../lib/relay.mjs';

const checks = {
  async notFound() {
    const client = rest();
    const keyName = client.options.key.split(':')[0];
    const res = await client.request('get', `/keys/${keyName}/requestToken`, 3, null, null, null);
    return { statusCode: res.statusCode, errorCode: res.errorCode, success: res.success };
  },

  async batchV2() {
    const body = { channels: [`${args.channel}:1`, `${args.channel}:2`], messages: { data: 'foo' } };
    const res = await rest().request('POST', '/messages', 2, {}, body, {});
    return { statusCode: res.statusCode, items: res.items };
  },

  async recovery() {
    const fakeRecoveryKey = JSON.stringify({
      connectionKey: '_____!ablyjs_test_fake-key____',
      msgSerial: 3,
      channelSerials: {},
    });
    const client = realtime({ recover: fakeRecoveryKey });
    const change = await once(client.connection, 'connected');
    return {
      reason: change.reason ? change.reason.code : null,
      errorReason: client.connection.errorReason ? client.connection.errorReason.code : null,
      msgSerial: client.connection.connectionManager.msgSerial,
      newKey: !client.connection.key.includes('ablyjs_test_fake'),
    };
  },

  async unknownKey() {
    const client = realtime({ key: 'this.is:wrong' });
    const change = await once(client.connection, 'failed');
    return { reason: change.reason ? change.reason.code : null };
  },

  async capability() {
    // ably-js sorts each requested operation list in place before sending it (c14n).
    const requested = { ops: ['subscribe', 'publish', 'presence'] };
    const token = await rest().auth.requestToken({ capability: requested }, { key: args.opsKey });
    return { requested, granted: JSON.parse(token.capability) };
  },

  async forceNack() {
    const channel = rest().channels.get(args.channel);
    const refused = await rejection(channel.publish({ name: 'n', data: 'd' }, { _forceNack: true }));
    const history = await channel.history();
    return { refused, stored: history.items.length };
  },
};

run(() => checks[args.check]());
