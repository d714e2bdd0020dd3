// Decode VCDIFF deltas made by the relay's encoder with the official @ably/vcdiff-decoder.
import vcdiffDecoder from '@ably/vcdiff-decoder';
import { args, run } from '../lib/relay.mjs';

run(async () => ({
  targets: args.cases.map(([source, delta]) =>
    Buffer.from(vcdiffDecoder.decode(Buffer.from(delta, 'hex'), Buffer.from(source, 'hex'))).toString('hex'),
  ),
}));
