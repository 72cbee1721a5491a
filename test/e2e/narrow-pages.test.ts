/**
 * The pages a visitor meets first fit a phone: at 390 px wide (and at 1280), in the three languages,
 * the start page and the footer pages are no wider than the window. The cookie page's table once
 * pushed the page to 575 px, its cookie names unbroken.
 */
import { describeBrowser, launchBrowser, newPage, type Browser } from '../support/browser.js';
import { startKapija, type RunningKapija } from '../support/kapija.js';

declare const document: { documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };

const PATHS = ['/', '/privacy', '/accessibility', '/cookies', '/help'];

describeBrowser('first pages on a phone', () => {
  let server: RunningKapija;
  let browser: Browser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([startKapija(), launchBrowser()]);
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('390 and 1280 px wide, three languages: the start page and the footer pages have no horizontal overflow', async () => {
    const page = await newPage(browser, { locale: 'en' });
    const problems: string[] = [];
    try {
      for (const width of [390, 1280]) {
        await page.setViewportSize({ width, height: 800 });
        for (const locale of ['sr-Cyrl', 'sr-Latn', 'en']) {
          for (const path of PATHS) {
            const res = await page.goto(`${server.url}${path}?lang=${locale}`);
            expect(res?.status()).toBe(200);
            const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
            if (scrollWidth > innerWidth) problems.push(`${locale} ${width}px ${path}: document ${scrollWidth}px wide in a ${innerWidth}px window`);
          }
        }
      }
    } finally {
      await page.context().close();
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
