/**
 * Open data (`/open-data/`): anonymous daily statistics under CC BY 4.0, as CSV and JSON, described
 * by a DCAT-AP catalog in JSON-LD that EU data portals can harvest. Counters are kept per day from
 * the domain events; what is published are completed UTC days only, and a count below the
 * threshold (OPEN_DATA_MIN_COUNT) is published as suppressed, never as its value. No dataset has a
 * dimension that identifies a person: services (client ids), assurance levels, factor types.
 */
import type { Context, Next } from 'koa';
import type { EventBus } from '../events.js';
import type { DailyCount, OpenDataRepository } from '../store/open-data.js';
import { csvCell } from '../security/csv.js';

const LICENSE = 'https://creativecommons.org/licenses/by/4.0/';
const DAY_MS = 24 * 3600 * 1000;
/** Days published, ending yesterday. */
const WINDOW_DAYS = 366;

interface Dataset {
  readonly id: string;
  readonly column: string;
  readonly title: { en: string; 'sr-Latn': string };
  readonly description: string;
  readonly keywords: readonly string[];
}

export const DATASETS: readonly Dataset[] = [
  {
    id: 'signins-by-service',
    column: 'service',
    title: { en: 'Sign-ins per service per day', 'sr-Latn': 'Prijave po servisu po danu' },
    description: 'Completed sign-ins through Kapija per day (UTC) and government service (OpenID Connect client id).',
    keywords: ['e-government', 'authentication', 'digital identity'],
  },
  {
    id: 'signins-by-level',
    column: 'assurance_level',
    title: { en: 'Sign-ins per level of assurance per day', 'sr-Latn': 'Prijave po nivou pouzdanosti po danu' },
    description: 'Completed sign-ins per day (UTC) and eIDAS level of assurance reached (low, substantial, high).',
    keywords: ['eIDAS', 'level of assurance', 'authentication'],
  },
  {
    id: 'second-factor-enrolments',
    column: 'factor',
    title: { en: 'Second-factor enrolments per type per day', 'sr-Latn': 'Uključivanja drugog faktora po vrsti po danu' },
    description: 'Second factors added by citizens per day (UTC) and type (totp, webauthn, recovery codes): adoption of two-factor sign-in.',
    keywords: ['multi-factor authentication', 'TOTP', 'WebAuthn'],
  },
  {
    id: 'registrations',
    column: 'scope',
    title: { en: 'New accounts per day', 'sr-Latn': 'Novi nalozi po danu' },
    description: 'Citizen accounts created per day (UTC).',
    keywords: ['registrations', 'digital identity'],
  },
];

export interface OpenData {
  readonly middleware: (ctx: Context, next: Next) => Promise<void>;
}

const utcDay = (t: number) => new Date(t).toISOString().slice(0, 10);
const levelOf = (acr: string) => {
  const last = acr.split('/').pop() ?? '';
  return ['low', 'substantial', 'high'].includes(last) ? last : 'other';
};

export function createOpenData(deps: {
  events: EventBus;
  store: OpenDataRepository;
  issuer: string;
  minCount: number;
  now?: () => number;
}): OpenData {
  const { store, issuer, minCount } = deps;
  const now = deps.now ?? Date.now;

  deps.events.on('signin.success', async ({ clientId, acr, at }) => {
    const day = utcDay(at.getTime());
    await store.incrementEach([
      { day, dataset: 'signins-by-service', dimension: clientId },
      { day, dataset: 'signins-by-level', dimension: levelOf(acr) },
    ]);
  });
  deps.events.on('factor.enrolled', async ({ type, at }) => {
    await store.increment(utcDay(at.getTime()), 'second-factor-enrolments', type);
  });

  const period = () => {
    const today = Date.parse(`${utcDay(now())}T00:00:00Z`);
    return { from: utcDay(today - WINDOW_DAYS * DAY_MS), to: utcDay(today - DAY_MS) };
  };
  const rowsOf = async (dataset: Dataset): Promise<DailyCount[]> => {
    const { from, to } = period();
    return dataset.id === 'registrations' ? store.registrations(from, to) : store.list(dataset.id, from, to);
  };
  const publish = (rows: DailyCount[]) =>
    rows.map((r) => ({ date: r.day, dimension: r.dimension, count: r.count >= minCount ? r.count : null, suppressed: r.count < minCount }));

  const base = `${issuer}/open-data`;
  const catalog = () => ({
    '@context': {
      dcat: 'http://www.w3.org/ns/dcat#',
      dct: 'http://purl.org/dc/terms/',
      foaf: 'http://xmlns.com/foaf/0.1/',
      vcard: 'http://www.w3.org/2006/vcard/ns#',
    },
    '@id': `${base}/catalog.jsonld`,
    '@type': 'dcat:Catalog',
    'dct:title': [
      { '@value': 'Kapija open data', '@language': 'en' },
      { '@value': 'Otvoreni podaci Kapije', '@language': 'sr-Latn' },
    ],
    'dct:description': [{ '@value': 'Anonymous daily statistics of the Kapija e-government identity provider.', '@language': 'en' }],
    'dct:publisher': { '@type': 'foaf:Agent', 'foaf:name': 'Kapija', 'foaf:homepage': { '@id': issuer } },
    'dct:license': { '@id': LICENSE },
    'dcat:dataset': DATASETS.map((d) => ({
      '@id': `${base}/${d.id}`,
      '@type': 'dcat:Dataset',
      'dct:identifier': d.id,
      'dct:title': [
        { '@value': d.title.en, '@language': 'en' },
        { '@value': d.title['sr-Latn'], '@language': 'sr-Latn' },
      ],
      'dct:description': [{ '@value': `${d.description} Counts below ${minCount} are suppressed.`, '@language': 'en' }],
      'dcat:keyword': d.keywords,
      'dct:publisher': { '@type': 'foaf:Agent', 'foaf:name': 'Kapija' },
      'dcat:contactPoint': { '@type': 'vcard:Organization', 'vcard:fn': 'Kapija', 'vcard:hasURL': { '@id': issuer } },
      'dct:accrualPeriodicity': { '@id': 'http://publications.europa.eu/resource/authority/frequency/DAILY' },
      'dcat:theme': { '@id': 'http://publications.europa.eu/resource/authority/data-theme/GOVE' },
      'dct:accessRights': { '@id': 'http://publications.europa.eu/resource/authority/access-right/PUBLIC' },
      'dcat:distribution': (['csv', 'json'] as const).map((ext) => ({
        '@id': `${base}/${d.id}.${ext}`,
        '@type': 'dcat:Distribution',
        'dcat:accessURL': { '@id': `${base}/${d.id}.${ext}` },
        'dcat:downloadURL': { '@id': `${base}/${d.id}.${ext}` },
        'dcat:mediaType': { '@id': `https://www.iana.org/assignments/media-types/${ext === 'csv' ? 'text/csv' : 'application/json'}` },
        'dct:format': { '@id': `http://publications.europa.eu/resource/authority/file-type/${ext.toUpperCase()}` },
        'dct:license': { '@id': LICENSE },
      })),
    })),
  });


  return {
    async middleware(ctx, next) {
      if (!ctx.path.startsWith('/open-data')) return next();
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
      ctx.set('access-control-allow-origin', '*');
      ctx.set('cache-control', 'public, max-age=3600');
      if (ctx.path === '/open-data' || ctx.path === '/open-data/') {
        ctx.body = {
          license: LICENSE,
          catalog: `${base}/catalog.jsonld`,
          suppressedBelow: minCount,
          period: period(),
          datasets: DATASETS.map((d) => ({ id: d.id, title: d.title.en, csv: `${base}/${d.id}.csv`, json: `${base}/${d.id}.json` })),
        };
        return;
      }
      if (ctx.path === '/open-data/catalog.jsonld') {
        ctx.type = 'application/ld+json';
        ctx.body = JSON.stringify(catalog(), null, 2);
        return;
      }
      const m = /^\/open-data\/([a-z-]+)\.(csv|json)$/.exec(ctx.path);
      const dataset = m ? DATASETS.find((d) => d.id === m[1]) : undefined;
      if (!m || !dataset) return next();
      const rows = publish(await rowsOf(dataset));
      if (m[2] === 'json') {
        ctx.body = {
          dataset: dataset.id,
          title: dataset.title.en,
          license: LICENSE,
          attribution: 'Kapija',
          period: period(),
          suppressedBelow: minCount,
          rows: rows.map((r) => ({ date: r.date, [dataset.column]: r.dimension, count: r.count, suppressed: r.suppressed })),
        };
        return;
      }
      ctx.type = 'text/csv; charset=utf-8';
      ctx.set('content-disposition', `inline; filename="${dataset.id}.csv"`);
      ctx.body = [
        `date,${dataset.column},count,suppressed`,
        ...rows.map((r) => [r.date, csvCell(r.dimension), r.count === null ? '' : String(r.count), String(r.suppressed)].join(',')),
      ].join('\n') + '\n';
    },
  };
}
