/**
 * The pages every footer links to besides /cookies: /privacy (the GDPR art. 13 notice),
 * /accessibility (the statement Directive (EU) 2016/2102 asks of public bodies) and /help (help and
 * contact). Their text is the operator's: one Markdown file per page and language,
 * `<page>.<locale>.md`, read at start from CONTENT_DIR, else from the shipped `content/` folder.
 *
 * The Markdown is a small subset rendered here, and everything in it is escaped: operator text can
 * never add HTML, script or styles to a page. Supported: `#`–`###` headings (the first `#` heading
 * is the page title), paragraphs, `-` and `1.` lists, `**bold**`, and `[text](url)` links to
 * http(s), mailto: and tel: addresses or to paths on Kapija.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';
import type { Locale } from '../config.js';
import { LOCALES } from '../i18n/index.js';
import type { Renderer } from './render.js';

export const CONTENT_PAGES = ['privacy', 'accessibility', 'help'] as const;
export type ContentPage = (typeof CONTENT_PAGES)[number];

export interface RenderedContent {
  title: string;
  html: string;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A link target operator text may use: web, mail and phone addresses and Kapija's own paths. */
function safeHref(raw: string): string | undefined {
  const href = raw.trim();
  if (/^\/(?!\/)/.test(href) || href.startsWith('#')) return href;
  if (/^mailto:[^\s]+$/i.test(href) || /^tel:[+\d\s()-]+$/i.test(href)) return href;
  try {
    const url = new URL(href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** Inline text: escaped, then **bold** and [links](url); an unsafe link stays as its text. */
function inline(text: string): string {
  let out = '';
  const link = /\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (let m = link.exec(text); m; m = link.exec(text)) {
    out += strong(escape(text.slice(last, m.index)));
    const href = safeHref(m[2]!);
    out += href ? `<a href="${escape(href)}">${strong(escape(m[1]!))}</a>` : strong(escape(m[1]!));
    last = m.index + m[0].length;
  }
  return out + strong(escape(text.slice(last)));
}
const strong = (escaped: string) => escaped.replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>');

/** Renders the Markdown subset to HTML; every character of the source is escaped. */
export function renderMarkdown(source: string): RenderedContent {
  const blocks: string[] = [];
  let title = '';
  let paragraph: string[] = [];
  let list: { tag: 'ul' | 'ol'; items: string[] } | undefined;
  const flush = () => {
    if (paragraph.length) blocks.push(`<p>${inline(paragraph.join(' '))}</p>`);
    paragraph = [];
    if (list) blocks.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join('')}</${list.tag}>`);
    list = undefined;
  };
  for (const raw of source.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const line = raw.trim();
    const heading = /^(#{1,3})\s+(.+)$/.exec(line);
    const bullet = /^[-*]\s+(.+)$/.exec(line);
    const numbered = /^\d+[.)]\s+(.+)$/.exec(line);
    if (!line) {
      flush();
    } else if (heading) {
      flush();
      const level = heading[1]!.length;
      if (level === 1 && !title) title = heading[2]!.replace(/\*\*/g, '');
      blocks.push(`<h${level}>${inline(heading[2]!)}</h${level}>`);
    } else if (bullet || numbered) {
      const tag = bullet ? 'ul' : 'ol';
      if (paragraph.length || (list && list.tag !== tag)) flush();
      list ??= { tag, items: [] };
      list.items.push((bullet ?? numbered)![1]!);
    } else if (list && /^\s{2,}/.test(raw)) {
      list.items[list.items.length - 1] += ` ${line}`;
    } else {
      if (list) flush();
      paragraph.push(line);
    }
  }
  flush();
  return { title, html: blocks.join('\n') };
}

/** The shipped `content/` folder, beside the sources or the build output. */
function shippedContentDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    const candidate = path.join(dir, 'content');
    if (fs.existsSync(path.join(candidate, 'privacy.en.md'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('content/ not found');
}

/**
 * Reads every page in every language once: the operator's file if CONTENT_DIR has it, else the
 * shipped one. A page without a `#` title is refused at start, as is a CONTENT_DIR that is missing.
 */
export function loadContent(contentDir: string | undefined): Map<string, RenderedContent> {
  if (contentDir !== undefined && !fs.statSync(contentDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`CONTENT_DIR ${contentDir} is not a folder`);
  }
  const shipped = shippedContentDir();
  const pages = new Map<string, RenderedContent>();
  for (const page of CONTENT_PAGES) {
    for (const locale of LOCALES) {
      const name = `${page}.${locale}.md`;
      const own = contentDir === undefined ? undefined : path.join(contentDir, name);
      const file = own && fs.existsSync(own) ? own : path.join(shipped, name);
      const rendered = renderMarkdown(fs.readFileSync(file, 'utf8'));
      if (!rendered.title) throw new Error(`${file} has no "# " title line`);
      pages.set(`${page}.${locale}`, rendered);
    }
  }
  return pages;
}

export function contentPages(opts: { render: Renderer; contentDir: string | undefined }) {
  const pages = loadContent(opts.contentDir);
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    const page = CONTENT_PAGES.find((p) => ctx.path === `/${p}`);
    if (!page) return next();
    const content = pages.get(`${page}.${ctx.state.locale as Locale}`)!;
    opts.render(ctx, 'content', { title: content.title, html: content.html, page });
  };
}
