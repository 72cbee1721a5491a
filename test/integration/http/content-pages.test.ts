/**
 * The footer of every page links the privacy notice, the accessibility statement, the cookie page
 * and help; the first, second and fourth are the operator's Markdown (CONTENT_DIR over the shipped
 * content/), rendered with everything escaped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kapijaForSuite } from '../../support/kapija.js';
import { en } from '../../../src/i18n/messages/en.js';
import { srCyrl } from '../../../src/i18n/messages/sr-Cyrl.js';
import { srLatn } from '../../../src/i18n/messages/sr-Latn.js';
import { loadContent, renderMarkdown } from '../../../src/http/content-pages.js';

const FOOTER_LINKS = ['/privacy', '/accessibility', '/cookies', '/help'];
const TITLES: Record<string, Record<string, string>> = {
  en: { privacy: 'Privacy notice', accessibility: 'Accessibility statement', help: 'Help and contact' },
  'sr-Latn': { privacy: 'Obaveštenje o privatnosti', accessibility: 'Izjava o pristupačnosti', help: 'Pomoć i kontakt' },
  'sr-Cyrl': { privacy: 'Обавештење о приватности', accessibility: 'Изјава о приступачности', help: 'Помоћ и контакт' },
};
const CATALOGUES = { en, 'sr-Latn': srLatn, 'sr-Cyrl': srCyrl } as const;

const footerHrefs = (html: string) => {
  const footer = /<footer class="site">([\s\S]*?)<\/footer>/.exec(html)?.[1] ?? '';
  return [...footer.matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
};

describe('shipped pages', () => {
  const server = kapijaForSuite();

  test.each(Object.keys(TITLES))('%s: every footer links the four pages, each answers in the language', async (locale) => {
    const m = CATALOGUES[locale as keyof typeof CATALOGUES];
    for (const start of ['/interaction/nope', '/cookies', '/recover']) {
      // A browser asks for HTML; /interaction/nope is an error page, which a program gets as JSON.
      const html = await (await fetch(`${server.url}${start}?lang=${locale}`, { headers: { accept: 'text/html' } })).text();
      expect({ start, links: footerHrefs(html) }).toEqual({ start, links: FOOTER_LINKS });
      for (const key of ['layout.privacy', 'layout.accessibility', 'layout.cookies', 'layout.help'] as const) expect(html).toContain(`>${m[key]}</a>`);
    }
    for (const page of ['privacy', 'accessibility', 'help']) {
      const res = await fetch(`${server.url}/${page}?lang=${locale}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const html = await res.text();
      expect(html).toContain(`<html lang="${locale}">`);
      expect(html).toContain(`<title>${TITLES[locale]![page]} · ${m['app.name']}</title>`);
      expect(html).toContain(`<h1>${TITLES[locale]![page]}</h1>`);
      expect(footerHrefs(html)).toEqual(FOOTER_LINKS);
    }
  });

  test('the privacy notice names what GDPR article 13 asks for; the statement its level, gaps and how to report', async () => {
    const privacy = await (await fetch(`${server.url}/privacy?lang=en`)).text();
    for (const heading of ['Who is responsible', 'What we process and why', 'Legal basis', 'How long we keep it', 'Your rights', 'Contact']) {
      expect(privacy).toContain(`<h2>${heading}</h2>`);
    }
    expect(privacy).toContain('<a href="/cookies">');
    const statement = await (await fetch(`${server.url}/accessibility?lang=en`)).text();
    expect(statement).toContain('WCAG');
    for (const heading of ['Known gaps', 'Report a problem']) expect(statement).toContain(`<h2>${heading}</h2>`);
  });

  test('only GET and HEAD; another method falls through to 404 or 405', async () => {
    const head = await fetch(`${server.url}/help`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const post = await fetch(`${server.url}/help`, { method: 'POST' });
    expect(post.status).toBeGreaterThanOrEqual(400);
    expect(post.status).toBeLessThan(500);
  });
});

describe('CONTENT_DIR', () => {
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-content-'));
    fs.writeFileSync(
      path.join(dir, 'privacy.en.md'),
      [
        '# Privacy at the <b>Tax</b> Office',
        '',
        'The controller is the Tax Office, <script>alert(1)</script> Belgrade. Write to [the officer](mailto:dpo@poreska.example.rs).',
        '',
        '- [bad link](javascript:void)',
        '- <img src=x onerror=alert(1)> **bold**',
      ].join('\n'),
    );
  });
  const server = kapijaForSuite(() => ({ env: { CONTENT_DIR: dir } }));
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the operator’s file replaces the shipped one, escaped; the pages it lacks stay the shipped ones', async () => {
    const html = await (await fetch(`${server.url}/privacy?lang=en`)).text();
    const main = /<main[^>]*>([\s\S]*)<\/main>/.exec(html)![1]!;
    expect(html).toContain('<title>Privacy at the &lt;b&gt;Tax&lt;/b&gt; Office · Kapija</title>');
    expect(main).toContain('<h1>Privacy at the &lt;b&gt;Tax&lt;/b&gt; Office</h1>');
    expect(main).toContain('The controller is the Tax Office, &lt;script&gt;alert(1)&lt;/script&gt; Belgrade.');
    expect(main).toContain('<a href="mailto:dpo@poreska.example.rs">the officer</a>');
    expect(main).toContain('<li>bad link</li>');
    expect(main).toContain('<li>&lt;img src=x onerror=alert(1)&gt; <strong>bold</strong></li>');
    expect(main).not.toMatch(/<script|<img|<b>|javascript:/);
    // The Serbian privacy notice and the other pages come from content/.
    expect(await (await fetch(`${server.url}/privacy?lang=sr-Latn`)).text()).toContain('<h1>Obaveštenje o privatnosti</h1>');
    expect(await (await fetch(`${server.url}/help?lang=en`)).text()).toContain('<h1>Help and contact</h1>');
  });

  test('a CONTENT_DIR that is not a folder, or a page without a title, stops the start', async () => {
    expect(() => loadContent(path.join(dir, 'missing'))).toThrow(/CONTENT_DIR .* is not a folder/);
    const untitled = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-content-'));
    fs.writeFileSync(path.join(untitled, 'help.sr-Cyrl.md'), 'No title here.\n');
    expect(() => loadContent(untitled)).toThrow(/help\.sr-Cyrl\.md has no "# " title line/);
    fs.rmSync(untitled, { recursive: true, force: true });
  });
});

test('the Markdown subset: headings, lists, links to safe targets only, everything else escaped', () => {
  const { title, html } = renderMarkdown('# A & B\n\nOne\ntwo [home](/) [x](//evil.example) [y](data:text/html,hi)\n\n1. first\n2. second\n\n### Small "q"');
  expect(title).toBe('A & B');
  expect(html).toBe('<h1>A &amp; B</h1>\n<p>One two <a href="/">home</a> x y</p>\n<ol><li>first</li><li>second</li></ol>\n<h3>Small &quot;q&quot;</h3>');
});
