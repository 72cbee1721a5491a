/**
 * A minimal user agent for HTTP-level flows: a cookie jar honouring Path, Max-Age and Expires,
 * manual redirects, and helpers to read Kapija's forms. Browser tests use Chromium instead.
 */
export class CookieJar {
  private cookies = new Map<string, { value: string; path: string; expires: number | undefined }>();

  store(setCookies: string[]): void {
    for (const header of setCookies) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      let cpath = '/';
      let expires: number | undefined;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k!.toLowerCase();
        if (key === 'path') cpath = v;
        if (key === 'max-age') expires = Date.now() + Number(v) * 1000;
        if (key === 'expires' && expires === undefined) expires = Date.parse(v);
      }
      const id = `${name}|${cpath}`;
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(id);
      else this.cookies.set(id, { value, path: cpath, expires });
    }
  }

  header(url: URL): string {
    const now = Date.now();
    return [...this.cookies.entries()]
      .filter(([, c]) => (c.expires === undefined || c.expires > now) && (url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/'))
      .map(([id, c]) => `${id.split('|')[0]}=${c.value}`)
      .join('; ');
  }

  get(name: string): string | undefined {
    for (const [id, c] of this.cookies) if (id.startsWith(`${name}|`)) return c.value;
    return undefined;
  }

  delete(name: string): void {
    for (const id of [...this.cookies.keys()]) if (id.startsWith(`${name}|`)) this.cookies.delete(id);
  }
}

export interface Page {
  status: number;
  url: URL;
  body: string;
  headers: Headers;
}

export class Agent {
  readonly jar = new CookieJar();

  constructor(private readonly acceptLanguage = 'en') {}

  /** One request, no redirect following. */
  async request(url: string | URL, init: { method?: string; form?: Record<string, string | string[]>; headers?: Record<string, string> } = {}): Promise<Page> {
    const u = new URL(url);
    const headers: Record<string, string> = { 'accept-language': this.acceptLanguage, accept: 'text/html', ...init.headers };
    const cookie = this.jar.header(u);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(init.form)) for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
      body = params.toString();
    }
    const res = await fetch(u, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.jar.store(res.headers.getSetCookie());
    return { status: res.status, url: u, body: await res.text(), headers: res.headers };
  }

  /** A JSON POST with this agent's cookies and a form token in the header, as static/webauthn.js sends it; the answer's JSON ({} when empty). */
  async postJson(url: URL, csrf: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf, cookie: this.jar.header(url) },
      body: JSON.stringify(body),
      redirect: 'manual',
    });
    this.jar.store(res.headers.getSetCookie());
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  /** Follows redirects until a page is reached or `stopAt(url)` says the redirect target is the end. */
  async follow(first: Page, stopAt: (url: URL) => boolean): Promise<Page | URL> {
    let page = first;
    for (let i = 0; i < 20; i += 1) {
      const location = page.headers.get('location');
      if (page.status < 300 || page.status >= 400 || !location) return page;
      const next = new URL(location, page.url);
      if (stopAt(next)) return next;
      page = await this.request(next);
    }
    throw new Error('too many redirects');
  }
}

/** Reads the value of a hidden input by name from a page. */
export function hiddenField(html: string, name: string): string | undefined {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`);
  return re.exec(html)?.[1];
}

/** Reads the action of the first form whose action matches `pattern`. */
export function formAction(html: string, pattern: RegExp): string | undefined {
  for (const m of html.matchAll(/<form[^>]*action="([^"]+)"/g)) if (pattern.test(m[1]!)) return m[1]!.replace(/&amp;/g, '&');
  return undefined;
}

/** The values of the checked checkboxes named `name`, as a browser would submit them. */
export function checkedValues(html: string, name: string): string[] {
  return [...html.matchAll(/<input[^>]*type="checkbox"[^>]*>/g)]
    .map((m) => m[0])
    .filter((tag) => tag.includes(`name="${name}"`) && /\schecked[\s>]/.test(tag))
    .map((tag) => /value="([^"]*)"/.exec(tag)?.[1] ?? 'on');
}
