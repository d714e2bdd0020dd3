// Mutation round trip through ably-js: publish, appendMessage x2, updateMessage, getMessage,
// getMessageVersions, deleteMessage, history, with the operations sent over realtime
// (args.via "realtime") or REST ("rest"), while a realtime subscriber records every delivery.
import { args, collect, errorInfo, messageFields, realtime, rest, run } from '../lib/relay.mjs';

function fields(m) {
  return {
    ...messageFields(m),
    version: m.version
      ? {
          serial: m.version.serial ?? null,
          clientId: m.version.clientId ?? null,
          description: m.version.description ?? null,
          metadata: m.version.metadata ?? null,
          timestamp: m.version.timestamp ?? null,
        }
      : null,
  };
}

run(async () => {
  const writer = realtime({ clientId: 'writer' });
  const reader = realtime({ clientId: 'reader' });
  const ch = writer.channels.get(args.channel);
  const sub = collect(reader.channels.get(args.channel), 5);
  await sub.attached;
  await ch.attach();
  const target = args.via === 'rest' ? rest({ clientId: 'writer' }).channels.get(args.channel) : ch;

  const published = await ch.publish({ name: 'doc', data: 'Hello', extras: { headers: { step: 'create' } } });
  const serial = published.serials[0];
  const a1 = await target.appendMessage({ serial, data: ', wor' });
  const a2 = await target.appendMessage({ serial, data: 'ld', extras: { headers: { step: 'append' } } });
  const afterAppend = fields(await target.getMessage(serial));
  const u = await target.updateMessage(
    { serial, name: 'doc2', data: 'Hello, world!' },
    { description: 'fix typo', metadata: { reason: 'typo' } },
  );
  const afterUpdate = fields(await target.getMessage(serial));
  const versions = (await target.getMessageVersions(serial)).items.map(fields);
  const d = await target.deleteMessage({ serial }, { description: 'gone' });
  const afterDelete = fields(await target.getMessage(serial));
  const live = (await sub.done).map(fields);
  const history = (await ch.history()).items.map(fields);
  let missing = null;
  try {
    await target.getMessage(serial.slice(0, -4) + '9999');
  } catch (err) {
    missing = errorInfo(err);
  }
  return {
    serial,
    versionSerials: [a1.versionSerial, a2.versionSerial, u.versionSerial, d.versionSerial],
    afterAppend,
    afterUpdate,
    versions,
    afterDelete,
    live,
    history,
    missing,
  };
});
