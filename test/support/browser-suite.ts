/**
 * For a browser suite: Kapija, Chromium and a loopback page standing for a service's redirect URI,
 * started before the suite's tests and stopped after them. Nothing starts when Chromium is not
 * available (the suite's tests skip themselves through describeBrowser).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { launchBrowser, type Browser } from './browser.js';
import { startKapija, type RunningKapija } from './kapija.js';

export interface BrowserSuite {
  server: RunningKapija;
  browser: Browser;
  /** A page answering 200 on loopback: where the service's redirect lands. */
  redirectUri: string;
}

export function browserSuiteWithService(): BrowserSuite {
  const suite = {} as BrowserSuite;
  let receiver: http.Server | undefined;
  let browser: Browser | undefined;
  let server: RunningKapija | undefined;
  beforeAll(async () => {
    if (process.env.KAPIJA_TEST_BROWSER !== '1') return;
    const r = http.createServer((_req, res) => res.end('ok'));
    receiver = r;
    await new Promise<void>((resolve) => r.listen(0, '127.0.0.1', resolve));
    suite.redirectUri = `http://127.0.0.1:${(r.address() as AddressInfo).port}/cb`;
    [server, browser] = await Promise.all([startKapija(), launchBrowser()]);
    suite.server = server;
    suite.browser = browser;
  });
  afterAll(async () => {
    await browser?.close();
    receiver?.closeAllConnections();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    await server?.stop();
  });
  return suite;
}
