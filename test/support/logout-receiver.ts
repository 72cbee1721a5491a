/**
 * A relying party's back-channel logout endpoint on 127.0.0.1: records every logout_token posted
 * to it and answers 200 (400 without a token), as OpenID Connect Back-Channel Logout 1.0 §2.8 asks.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LogoutReceiver {
  /** Where to register it: `backchannel_logout_uri`. */
  readonly url: string;
  /** Every logout_token accepted (answered 200), in order. */
  readonly tokens: string[];
  /** Every logout_token posted, accepted or not. */
  readonly attempts: string[];
  /** The status it answers a logout token with (200; set 503 to play a service that is down). */
  status: number;
  close(): Promise<void>;
}

export async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const tokens: string[] = [];
  const attempts: string[] = [];
  const state = { status: 200 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && token) {
        attempts.push(token);
        if (state.status === 200) tokens.push(token);
      }
      res.statusCode = token ? state.status : 400;
      res.setHeader('cache-control', 'no-store');
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A test that fails before close() must not keep jest from exiting.
  server.unref();
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`,
    tokens,
    attempts,
    get status() {
      return state.status;
    },
    set status(s: number) {
      state.status = s;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
