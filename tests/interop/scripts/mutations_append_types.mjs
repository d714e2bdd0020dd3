// Append data types and sizes through ably-js (realtime or REST per args.via): string onto string
// and binary onto binary concatenate; binary onto string and string onto binary fail with 40013;
// an append that would take the whole message past maxMessageSize fails with 40009 and leaves the
// message as it was.
import { args, describe, realtime, rejection, rest, run } from '../lib/relay.mjs';

run(async () => {
  const client = realtime({ clientId: 'writer' });
  const ch = client.channels.get(args.channel);
  await ch.attach();
  const target = args.via === 'rest' ? rest({ clientId: 'writer' }).channels.get(args.channel) : ch;
  const publish = async (data) => (await ch.publish({ name: 'm', data })).serials[0];
  const dataOf = async (serial) => describe((await target.getMessage(serial)).data);

  const text = await publish('abc');
  await target.appendMessage({ serial: text, data: 'déf' });
  await target.appendMessage({ serial: text, data: '✓' });
  const bin = await publish(Buffer.from([0, 1, 2]));
  await target.appendMessage({ serial: bin, data: Buffer.from([3, 255]) });
  await target.appendMessage({ serial: bin, data: new Uint8Array([4]) });
  const binOntoText = await rejection(target.appendMessage({ serial: text, data: Buffer.from([9]) }));
  const textOntoBin = await rejection(target.appendMessage({ serial: bin, data: 'x' }));

  const big = await publish('a'.repeat(args.half));
  const sizeOk = await target.appendMessage({ serial: big, data: 'b'.repeat(100) });
  const tooLarge = await rejection(target.appendMessage({ serial: big, data: 'c'.repeat(args.half) }));
  const bigAfter = (await target.getMessage(big)).data;

  return {
    text: await dataOf(text),
    bin: await dataOf(bin),
    binOntoText,
    textOntoBin,
    unchanged: { text: await dataOf(text), bin: await dataOf(bin) },
    sizeOk: Boolean(sizeOk.versionSerial),
    tooLarge,
    bigAfterLength: bigAfter.length,
    bigAfterTail: bigAfter.slice(-3),
  };
});
