/**
 * Chromium for the end-to-end tests: Debian's build driven by playwright-core (no browser is ever
 * downloaded), axe-core for accessibility, the CDP virtual authenticator for WebAuthn, and the one
 * place where a browser signs in (`browserSignIn`), so a new sign-in step is taught here only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContextOptions, type CDPSession, type Page } from 'playwright-core';
import { nextTotpCode } from './totp.js';

export type { Browser, Page };

const require = createRequire(import.meta.url);

/** True when global setup found Chromium; browser suites run only then. */
export const browserAvailable = process.env.KAPIJA_TEST_BROWSER === '1';

/** `describe` when Chromium is available, else `describe.skip` with the reason printed once. */
export const describeBrowser: jest.Describe = (() => {
  if (browserAvailable) return describe;
  const skip = ((name: string, fn: () => void) => {
    console.log(`[skip] "${name}": Chromium not available (KAPIJA_TEST_BROWSER=${process.env.KAPIJA_TEST_BROWSER ?? 'unset'}, CHROMIUM_PATH=${process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'})`);
    return describe.skip(name, fn);
  }) as jest.Describe;
  return Object.assign(skip, describe);
})();

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-gpu',
      '--disable-quic',
    ],
  });
}

export interface NewPageOptions {
  /** Browser language: navigator.language and the Accept-Language header. */
  locale?: string;
  /** Ignore the pages' Content-Security-Policy. Off by default: Kapija's pages must work under it. */
  bypassCSP?: boolean;
  context?: BrowserContextOptions;
}

/**
 * A page in a fresh context (its own cookies). Every Content-Security-Policy violation in it (the
 * document's `securitypolicyviolation` events, reported through a binding the CSP does not govern)
 * is collected for `cspViolations(page)`. Close it with `page.context().close()`.
 */
export async function newPage(browser: Browser, opts: NewPageOptions = {}): Promise<Page> {
  const context = await browser.newContext({
    locale: opts.locale ?? 'en',
    bypassCSP: opts.bypassCSP ?? false,
    ...opts.context,
  });
  const violations: string[] = [];
  await context.exposeBinding('__kapijaCspViolation', (_source, text: string) => {
    violations.push(text);
  });
  await context.addInitScript(`document.addEventListener('securitypolicyviolation', function (e) {
    window.__kapijaCspViolation(e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' on ' + e.documentURI);
  });`);
  const page = await context.newPage();
  csp.set(page, violations);
  return page;
}

const csp = new WeakMap<Page, string[]>();

/** Content-Security-Policy violations seen so far by a page from `newPage`. */
export function cspViolations(page: Page): string[] {
  return [...(csp.get(page) ?? [])];
}

let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: unknown[]; html: string; failureSummary?: string }[];
}

export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] as const;

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA) on the current page and returns its violations.
 * axe is first evaluated through the DevTools protocol, which the page's CSP does not govern; if that
 * fails it is added as a script tag, which needs a context with `bypassCSP`.
 */
export async function runAxe(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  const present = () => page.evaluate('typeof window.axe === "object" && typeof window.axe.run === "function"');
  if (!(await present())) {
    await page.evaluate(`${axeSource}\n;void 0`).catch(() => undefined);
    if (!(await present())) await page.addScriptTag({ content: axeSource });
  }
  const result = (await page.evaluate(
    `window.axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(AXE_TAGS)} }, resultTypes: ['violations'] })`,
  )) as { violations: AxeViolation[] };
  return result.violations;
}

/** Axe violations as readable text, one node per line, for assertion messages. */
export function formatViolations(violations: AxeViolation[]): string {
  return violations
    .map(
      (v) =>
        `${v.id} (${v.impact ?? 'n/a'}): ${v.help}\n  ${v.helpUrl}\n` +
        v.nodes.map((n) => `  - ${JSON.stringify(n.target)} ${n.html}\n    ${(n.failureSummary ?? '').replace(/\n/g, '\n    ')}`).join('\n'),
    )
    .join('\n');
}

/**
 * The AAGUID Chromium's CTAP2 virtual authenticator reports, with packed attestation Kapija cannot
 * trace to any FIDO-certified model: its credentials are software keys (`swk`). A suite that needs
 * them to count as hardware keys (eIDAS high) starts Kapija with this AAGUID allow-listed, as an
 * operator would name a model it trusts: `env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID }`.
 */
export const VIRTUAL_AUTHENTICATOR_AAGUID = '01020304-0506-0708-0102-030405060708';

export interface VirtualAuthenticatorOptions {
  transport?: 'internal' | 'usb';
  hasResidentKey?: boolean;
  hasUserVerification?: boolean;
  isUserVerified?: boolean;
  automaticPresenceSimulation?: boolean;
}

export interface VirtualAuthenticator {
  readonly id: string;
  readonly session: CDPSession;
  /** Credentials the authenticator holds (WebAuthn.getCredentials). */
  credentials(): Promise<{ credentialId: string; isResidentCredential: boolean; rpId?: string; userHandle?: string; signCount: number }[]>;
  remove(): Promise<void>;
}

/**
 * Adds a CTAP2 virtual authenticator to the page's target (Chromium's WebAuthn domain).
 * WebAuthn refuses an IP address as RP ID ("This is an invalid domain"): a WebAuthn test serves
 * Kapija as http://localhost:<port> (ISSUER, hence WEBAUTHN_RP_ID "localhost"), not 127.0.0.1.
 */
export async function addVirtualAuthenticator(page: Page, opts: VirtualAuthenticatorOptions = {}): Promise<VirtualAuthenticator> {
  const session = await page.context().newCDPSession(page);
  await session.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await session.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: opts.transport ?? 'internal',
      hasResidentKey: opts.hasResidentKey ?? true,
      hasUserVerification: opts.hasUserVerification ?? true,
      isUserVerified: opts.isUserVerified ?? true,
      automaticPresenceSimulation: opts.automaticPresenceSimulation ?? true,
    },
  });
  return {
    id: authenticatorId,
    session,
    async credentials() {
      const { credentials } = await session.send('WebAuthn.getCredentials', { authenticatorId });
      return credentials;
    },
    async remove() {
      await session.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    },
  };
}

export interface BrowserSignInOptions {
  username: string;
  password: string;
  /** TOTP key of the citizen (from createTestAccount), typed in when the TOTP form is shown. */
  totpSecret?: string | undefined;
  /** Answer the consent page (default true: allow). */
  consent?: boolean;
  /** Stop once the URL starts with this (the relying party's redirect URI). */
  redirectUri?: string;
  /** Fill and submit with the keyboard only (Tab, typing, Enter, Space), never the mouse. */
  keyboard?: boolean;
  /** Called on every Kapija page before it is answered (e.g. for axe checks). */
  onPage?: (page: Page, step: SignInStep) => Promise<void>;
  /** Keyboard mode: called after every Tab, with focus on the element it reached. */
  onFocus?: (page: Page) => Promise<void>;
}

/** The steps of the sign-in, named after the form action that answers them. */
export type SignInStep = 'login' | 'totp' | 'confirm';

/** Which sign-in step the page shows, by the actions of its forms. */
export async function signInStep(page: Page): Promise<SignInStep | undefined> {
  const actions = await page.locator('form[action]').evaluateAll((forms) => forms.map((f) => f.getAttribute('action') ?? ''));
  if (actions.some((a) => /\/interaction\/[^/]+\/login$/.test(a))) return 'login';
  if (actions.some((a) => /\/interaction\/[^/]+\/totp$/.test(a))) return 'totp';
  if (actions.some((a) => /\/interaction\/[^/]+\/confirm$/.test(a))) return 'confirm';
  return undefined;
}

/**
 * Signs in on the page the browser is on (the login form after an authorization request), answering
 * each following Kapija page by its form action until the browser leaves for `redirectUri` (or no
 * step is recognised). Returns the URL the browser ends on.
 */
export async function browserSignIn(page: Page, opts: BrowserSignInOptions): Promise<URL> {
  const done = () => (opts.redirectUri ? page.url().startsWith(opts.redirectUri) : false);
  for (let i = 0; i < 8 && !done(); i += 1) {
    const step = await signInStep(page);
    if (!step) break;
    await opts.onPage?.(page, step);
    const navigation = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
    switch (step) {
      case 'login':
        await fill(page, opts, '#username', opts.username);
        await fill(page, opts, '#password', opts.password);
        // From the keyboard, Enter in the password field submits (implicit submission).
        if (opts.keyboard) await page.keyboard.press('Enter');
        else await submit(page, opts, 'form[action$="/login"] button[type=submit]');
        break;
      case 'totp':
        if (!opts.totpSecret) throw new Error('browserSignIn: TOTP asked for, but no totpSecret given');
        await fill(page, opts, 'form[action$="/totp"] input[name=code]', await nextTotpCode(opts.totpSecret));
        await submit(page, opts, 'form[action$="/totp"] button[type=submit]');
        break;
      case 'confirm':
        await submit(page, opts, opts.consent === false ? 'form[action$="/abort"] button[type=submit]' : 'form[action$="/confirm"] button[type=submit]', 'Space');
        break;
    }
    await navigation;
    await page.waitForLoadState('load');
    // A page rendered again at the same step (wrong password, wrong code) is a failure, not progress.
    if (!done() && (await signInStep(page)) === step && step !== 'confirm') {
      const alert = await page.locator('[role=alert]').first().textContent().catch(() => null);
      throw new Error(`browserSignIn: the ${step} step failed at ${page.url()}${alert ? `: ${alert.trim()}` : ''}`);
    }
  }
  return new URL(page.url());
}

/** Moves focus to `selector` with Tab (keyboard mode) or by focusing it, then types `value`. */
async function fill(page: Page, opts: BrowserSignInOptions, selector: string, value: string): Promise<void> {
  if (!opts.keyboard) {
    await page.locator(selector).fill(value);
    return;
  }
  await tabTo(page, selector, opts.onFocus);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(value);
}

/** Clicks the button, or from the keyboard Tabs to it and presses `key` (Enter or Space). */
async function submit(page: Page, opts: BrowserSignInOptions, selector: string, key: 'Enter' | 'Space' = 'Enter'): Promise<void> {
  if (!opts.keyboard) {
    await page.locator(selector).click();
    return;
  }
  await tabTo(page, selector, opts.onFocus);
  await page.keyboard.press(key);
}

/** Whether the focused element matches `selector`. */
export async function focusMatches(page: Page, selector: string): Promise<boolean> {
  return page.evaluate((sel) => {
    const el = (globalThis as unknown as { document: { activeElement: { matches(s: string): boolean } | null } }).document.activeElement;
    return Boolean(el && el.matches(sel));
  }, selector);
}

/**
 * Presses Tab until `selector` has focus (at most `limit` times), calling `onFocus` after each press;
 * throws if it is never reached.
 */
export async function tabTo(page: Page, selector: string, onFocus?: (page: Page) => Promise<void>, limit = 30): Promise<void> {
  for (let i = 0; i <= limit; i += 1) {
    if (await focusMatches(page, selector)) return;
    await page.keyboard.press('Tab');
    await onFocus?.(page);
  }
  throw new Error(`Tab never reached ${selector} on ${page.url()}`);
}
