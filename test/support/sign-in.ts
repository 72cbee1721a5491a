/**
 * Drives Kapija's sign-in pages over HTTP the way a browser would: authorize → login form →
 * TOTP → (consent) → redirect to the relying party. Returns the callback URL carrying the code.
 */
import { Agent, checkedValues, formAction, hiddenField, type Page } from './browserless.js';
import { nextTotpCode } from './totp.js';

export interface SignInOptions {
  username: string;
  password: string;
  /** TOTP key of the citizen (from createTestAccount); codes are generated as an app would. */
  totpSecret?: string | undefined;
  /** Grant consent when asked (default true). */
  consent?: boolean;
  /** The optional claims to tick on the consent page (default: those the page ticks). */
  claims?: string[];
  /** Tick "remember this browser" on the second-factor page. */
  rememberBrowser?: boolean;
}

export class SignInError extends Error {
  constructor(message: string, readonly page: Page) {
    super(message);
  }
}

export async function submitForm(agent: Agent, page: Page, actionPattern: RegExp, fields: Record<string, string | string[]>): Promise<Page> {
  const action = formAction(page.body, actionPattern);
  if (!action) throw new SignInError(`no form matching ${actionPattern} on ${page.url.pathname} (status ${page.status})`, page);
  const csrf = hiddenField(page.body, '_csrf') ?? '';
  // As a browser would: ticked checkboxes go along unless the caller decides them.
  const ticked = fields.claims === undefined ? checkedValues(page.body, 'claims') : [];
  return agent.request(new URL(action, page.url), { form: { _csrf: csrf, ...(ticked.length ? { claims: ticked } : {}), ...fields } });
}

export async function signIn(agent: Agent, authorizationUrl: URL, redirectUri: string, opts: SignInOptions): Promise<URL> {
  const isCallback = (u: URL) => u.href.startsWith(redirectUri);
  let step = await agent.follow(await agent.request(authorizationUrl), isCallback);
  for (let i = 0; i < 6; i += 1) {
    if (step instanceof URL) return step;
    const page = step;
    let next: Page;
    if (/\/interaction\/[^/]+$/.test(page.url.pathname) && /\/login"/.test(page.body)) {
      next = await submitForm(agent, page, /\/login$/, { username: opts.username, password: opts.password });
      if (next.status !== 303) throw new SignInError(`login failed with status ${next.status}`, next);
    } else if (/\/totp"/.test(page.body) && opts.totpSecret) {
      next = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(opts.totpSecret), ...(opts.rememberBrowser ? { remember: 'yes' } : {}) });
      if (next.status !== 303) throw new SignInError(`TOTP step failed with status ${next.status}`, next);
    } else if (/\/confirm"/.test(page.body)) {
      if (opts.consent === false) next = await submitForm(agent, page, /\/abort$/, {});
      else next = await submitForm(agent, page, /\/confirm$/, { claims: opts.claims ?? checkedValues(page.body, 'claims') });
    } else {
      const alert = /role="alert"[^>]*>([^<]*)</.exec(page.body)?.[1]?.trim();
      throw new SignInError(`unexpected page ${page.url.pathname} (status ${page.status})${alert ? `: ${alert}` : ''}`, page);
    }
    step = await agent.follow(next, isCallback);
  }
  throw new SignInError('sign-in did not finish', step as Page);
}

/** Opens the end_session URL, checks Kapija's confirmation page and confirms "sign out everywhere". */
/**
 * Signs in as signIn() does, answering the representation page (mandates) with `choice` (a mandate
 * id or `self`); without a choice that page is an error. Each representation page shown is added to
 * `pages`; `claims` picks the claims to tick on a consent page (default: those it ticks).
 */
export async function signInChoosing(
  agent: Agent,
  url: URL,
  redirectUri: string,
  who: SignInOptions,
  opts: { choice?: string | undefined; pages?: string[]; claims?: ((page: string) => string[]) | undefined } = {},
): Promise<URL> {
  const isCallback = (u: URL) => u.href.startsWith(redirectUri);
  let step = await agent.follow(await agent.request(url), isCallback);
  for (let i = 0; i < 8; i += 1) {
    if (step instanceof URL) return step;
    const page: Page = step;
    let next: Page;
    if (/\/login"/.test(page.body)) next = await submitForm(agent, page, /\/login$/, { username: who.username, password: who.password });
    else if (/\/totp"/.test(page.body)) next = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(who.totpSecret!) });
    else if (/\/represent"/.test(page.body)) {
      opts.pages?.push(page.body);
      if (!opts.choice) throw new Error('the representation page was shown');
      next = await submitForm(agent, page, /\/represent$/, { choice: opts.choice });
      if (next.status >= 400) return Promise.reject(Object.assign(new Error(`represent answered ${next.status}`), { page: next }));
    } else if (/\/confirm"/.test(page.body)) next = await submitForm(agent, page, /\/confirm$/, { claims: opts.claims ? opts.claims(page.body) : checkedValues(page.body, 'claims') });
    else throw new Error(`unexpected page ${page.url.pathname} (${page.status})`);
    step = await agent.follow(next, isCallback);
  }
  throw new Error('sign-in did not finish');
}

export async function confirmLogout(agent: Agent, endSession: URL): Promise<{ confirmation: Page; done: Page }> {
  const confirmation = await agent.request(endSession);
  const action = formAction(confirmation.body, /\/session\/end\/confirm$/);
  const xsrf = hiddenField(confirmation.body, 'xsrf');
  if (!action || !xsrf) throw new Error(`no logout form on the confirmation page (status ${confirmation.status})`);
  const done = await agent.request(new URL(action, confirmation.url), { form: { xsrf, logout: 'yes' } });
  return { confirmation, done };
}

/**
 * Opens an account portal page (`/account` by default) at `issuer` in `agent`, signing in through
 * Kapija first when the portal asks for it; the page must answer 200.
 */
export async function openPortal(agent: Agent, issuer: string, citizen: SignInOptions, path = '/account'): Promise<Page> {
  let page = await agent.request(new URL(path, issuer));
  if (page.status === 303) {
    const callback = await signIn(agent, new URL(page.headers.get('location')!), `${issuer}/account/callback`, citizen);
    const back = await agent.request(callback);
    if (back.status !== 303) throw new Error(`the portal's callback answered ${back.status}`);
    page = await agent.request(new URL(back.headers.get('location')!, issuer));
  }
  if (page.status !== 200) throw new Error(`${path} answered ${page.status}`);
  return page;
}
