// Channel enumeration (GET /channels) through ably-js's generic rest.request, as the Ably CLI and
// dashboards call it: details with occupancy (by=value, the default), names only (by=id), a
// prefix, pages of `limit` followed through the Link header, and a capability without
// app-wide channel-metadata refused.
//
// args: prefix, names (channels to publish to, under prefix), other (a channel outside it),
// busy (the one a realtime client attaches to and enters). Result: details, idPages, defaultIds,
// badBy, forbidden.
import { args, connected, realtime, rest, run } from '../lib/relay.mjs';
import { tokenRest } from '../lib/auth.mjs';

/** Every page of an HttpPaginatedResponse: {items, hasNext, statusCode} each. */
async function allPages(first) {
  const out = [];
  let page = first;
  while (page) {
    out.push({ items: page.items, hasNext: page.hasNext(), statusCode: page.statusCode });
    if (!page.hasNext() || out.length > 20) break;
    page = await page.next();
  }
  return out;
}

const failure = (response) => ({
  success: response.success,
  statusCode: response.statusCode,
  errorCode: response.errorCode,
});

run(async () => {
  const admin = rest();
  for (const name of [...args.names, args.other]) await admin.channels.get(name).publish('m', name);
  const member = realtime({ clientId: 'watcher' });
  await connected(member);
  await member.channels.get(args.busy).presence.enter('here');

  const details = await admin.request('get', '/channels', 3, { prefix: args.prefix, by: 'value' });
  const idPages = await allPages(await admin.request('get', '/channels', 3, { prefix: args.prefix, by: 'id', limit: 2 }));
  const defaultIds = (await admin.request('get', '/channels', 3, { prefix: args.prefix })).items.map((d) => d.channelId);
  const badBy = failure(await admin.request('get', '/channels', 3, { by: 'name' }));

  const token = await admin.auth.requestToken({ capability: { [`${args.prefix}*`]: ['channel-metadata', 'subscribe'] } });
  const narrow = tokenRest({ tokenDetails: token });
  const forbidden = failure(await narrow.request('get', '/channels', 3, {}));

  return { details: details.items, idPages, defaultIds, badBy, forbidden };
});
