// The pinned packages load on this node; report the versions installed in node_modules.
import { readFileSync } from 'node:fs';

const versions = {};
for (const name of ['ably', '@ably/ai-transport', '@ably/vcdiff-decoder', 'ai']) {
  await import(name);
  const manifest = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  versions[name] = JSON.parse(readFileSync(manifest, 'utf8')).version;
}
await import('@ably/ai-transport/vercel');
process.stdout.write('RESULT ' + JSON.stringify({ node: process.versions.node, versions }) + '\n');
