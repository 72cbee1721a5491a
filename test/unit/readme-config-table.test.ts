/**
 * README.md's configuration table is generated from src/config.ts; this keeps the two in step.
 */
import fs from 'node:fs';
import { configTable, parseConfigSchema, TABLE_END, TABLE_START, withConfigTable } from '../../scripts/config-table.js';

const read = (rel: string) => fs.readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');

test('the parser finds every variable of the configuration schema, each with its comment', () => {
  const source = read('src/config.ts');
  const schema = source.slice(source.indexOf('const schema = z.object({'), source.indexOf('\n});'));
  const keys = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]);
  const entries = parseConfigSchema(source);
  expect(entries.map((e) => e.name)).toEqual(keys);
  for (const e of entries) expect(e.meaning.length).toBeGreaterThan(5);
  expect(entries.find((e) => e.name === 'PORT')).toEqual({ name: 'PORT', defaultValue: '3000', meaning: 'TCP port of the HTTP server.' });
  expect(entries.find((e) => e.name === 'MASTER_KEY')?.defaultValue).toBeUndefined();
});

test('README.md carries the current table (regenerate: node --import tsx scripts/config-table.ts --write)', () => {
  const readme = read('README.md');
  expect(readme).toContain(TABLE_START);
  expect(readme).toContain(TABLE_END);
  expect(withConfigTable(readme, configTable(read('src/config.ts')))).toBe(readme);
});
