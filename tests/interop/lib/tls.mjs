// Client options for a relay serving TLS (RELAY_TLS=1): wss:// and https:// on RELAY_PORT.
// The test's certificate authority reaches node through NODE_EXTRA_CA_CERTS, as it would for
// any operator with a private CA; nothing in ably-js is changed or relaxed.

import { port } from './relay.mjs';

/** Overrides for clientOptions(): TLS on the relay's one port (ably-js calls it tlsPort). */
export function tlsOptions(overrides = {}) {
  return {
    tls: true,
    tlsPort: port,
    wsConnectivityCheckUrl: `wss://localhost:${port}/`,
    connectivityCheckUrl: `https://localhost:${port}/time`,
    ...overrides,
  };
}
