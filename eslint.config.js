// ESLint flat config: typescript-eslint's recommended rules over the TypeScript sources and tests,
// and the design guide's "who may import whom" as import boundaries per folder.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/**
 * The raw database handle stays in store/ and the entry points that open it (app.ts, main.ts,
 * cli/): everything else is given repositories (store/index.ts createRepositories).
 */
const RAW_DATABASE = { regex: '^(\\.\\./)+store/db\\.js$', message: 'Only store/ and the entry points hold the database handle: take repositories from store/index.ts instead.' };

export default tseslint.config(
  { ignores: ['dist/**', 'data/**', 'node_modules/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  // Import boundaries. One block per folder (a file matches one of them only, since a later block's
  // no-restricted-imports would replace an earlier one's). Each pattern is matched against the import
  // source as written.
  boundaries('src/store/**/*.ts', [
    { regex: '^(koa|koa-.*|@koa/.*|oidc-provider)(/.*)?$', message: 'store/ holds SQL only: no HTTP and no engine.' },
    { regex: '^(\\.\\./)+factors/', message: 'store/ must not import factors/: repositories are passed to the factors, not the other way round.' },
  ]),
  boundaries('src/security/**/*.ts', [
    { regex: '^\\.\\./(?!(config|errors)\\.js$|i18n/)', message: 'security/ imports nothing of Kapija beyond config, errors and i18n/: storage arrives as an interface it declares.' },
    { regex: '^\\.\\./\\.\\./', message: 'security/ imports nothing outside src/.' },
  ]),
  boundaries('src/i18n/*.ts', [
    { regex: '^\\.\\./(?!(config|errors)\\.js$|security/)', message: 'i18n/ imports nothing of Kapija beyond config, errors and security/.' },
    { regex: '^\\.\\./\\.\\./', message: 'i18n/ imports nothing outside src/.' },
  ]),
  boundaries('src/i18n/messages/*.ts', [
    { regex: '^\\.\\./\\.\\./(?!(config|errors)\\.js$|security/)', message: 'i18n/ imports nothing of Kapija beyond config, errors and security/.' },
    { regex: '^\\.\\./\\.\\./\\.\\./', message: 'i18n/ imports nothing outside src/.' },
  ]),
  boundaries(['src/config.ts', 'src/errors.ts'], [
    { regex: '^\\./(?!(config|errors)\\.js$|security/|i18n/)', message: 'config and errors import nothing of Kapija beyond each other, security/ and i18n/.' },
    { regex: '^\\.\\./', message: 'config and errors import nothing outside src/.' },
  ]),
  boundaries('src/assurance/**/*.ts', [
    { regex: '^\\.\\./', message: 'assurance/ is the leaf vocabulary (amr, acr, levels) the factors and the engine share: it imports nothing of Kapija.' },
  ]),
  boundaries('src/factors/**/*.ts', [
    { regex: '^(\\.\\./)+oidc/', message: 'factors/ must not import oidc/: the amr/acr vocabulary is in assurance/, and the engine asks the factors, not the other way round.' },
    { regex: '^(\\.\\./)+(interactions|account|admin|http)/', message: 'factors/ knows no pages: the pages ask the registry.' },
    { regex: '^(koa|koa-.*|@koa/.*|oidc-provider)(/.*)?$', message: 'factors/ holds no HTTP and no engine.' },
    RAW_DATABASE,
  ]),
  boundaries('src/wallet/**/*.ts', [
    { regex: '^(\\.\\./)+(oidc|interactions|account|admin)/', message: 'wallet/ knows the sign-in only as a registered factor and the engine not at all: what it needs arrives through the composition root.' },
    RAW_DATABASE,
  ]),
  boundaries('src/interactions/**/*.ts', [
    { regex: '^\\.\\./factors/(?!registry\\.js$)', message: 'interactions/ knows factors only through factors/registry.js, never a concrete factor.' },
    RAW_DATABASE,
  ]),
  boundaries('src/oidc/**/*.ts', [
    { regex: '^(\\.\\./)+interactions/', message: 'oidc/ knows the interaction pages only by URL: it must not import interactions/.' },
    RAW_DATABASE,
  ]),
  boundaries(['src/registration/**/*.ts', 'src/recovery/**/*.ts'], [
    RAW_DATABASE,
    { regex: '^(\\.\\./)+(account|admin)/', message: 'registration/ and recovery/ do not import the account portal or the administration: what they need arrives through the composition root.' },
  ]),
  boundaries('src/notices/**/*.ts', [
    RAW_DATABASE,
    { regex: '^(\\.\\./)+(account|admin|http|interactions)/', message: 'notices/ is mail about account events: no pages, no HTTP.' },
    { regex: '^(koa|koa-.*|@koa/.*)(/.*)?$', message: 'notices/ is mail about account events: no pages, no HTTP.' },
  ]),
  boundaries('src/account/**/*.ts', [
    RAW_DATABASE,
    { regex: '^(\\.\\./)+(admin|registration|recovery)/', message: 'account/ does not import admin/, registration/ or recovery/: what it needs from them arrives through the composition root.' },
  ]),
  boundaries('src/admin/**/*.ts', [
    RAW_DATABASE,
    { regex: '^(\\.\\./)+(registration|recovery|interactions)/', message: 'admin/ does not import another part\'s pages: what it needs arrives through the composition root.' },
    { regex: '^(\\.\\./)+account/(?!deletion\\.js$)', message: 'admin/ takes only the account deletion service from account/.' },
  ]),
  boundaries(['src/http/**/*.ts', 'src/observability/**/*.ts', 'src/open-data/**/*.ts', 'src/mail/**/*.ts', 'src/audit/**/*.ts', 'src/identity/**/*.ts'], [RAW_DATABASE]),
  {
    files: ['static/**/*.js'],
    languageOptions: { globals: { ...globals.browser }, sourceType: 'script' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    languageOptions: { globals: { ...globals.node, ...globals.jest } },
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);

/** A block forbidding, in `files`, the imports whose source matches one of `patterns`. */
function boundaries(files, patterns) {
  return {
    files: Array.isArray(files) ? files : [files],
    rules: { 'no-restricted-imports': ['error', { patterns: patterns.map((p) => ({ ...p, caseSensitive: true })) }] },
  };
}
