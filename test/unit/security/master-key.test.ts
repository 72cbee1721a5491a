/**
 * The master key: from the environment, or (development only) a key file created once, private.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../../src/config.js';
import { resolveMasterKey } from '../../../src/security/master-key.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-mk-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const devConfig = (dataDir: string): Config => loadConfig({ DATA_DIR: dataDir });

describe('resolveMasterKey', () => {
  it('uses MASTER_KEY when set, and writes no file', () => {
    const key = randomBytes(32);
    const resolved = resolveMasterKey(loadConfig({ DATA_DIR: dir, MASTER_KEY: key.toString('base64') }));
    expect(resolved.source).toBe('env');
    expect(resolved.generated).toBe(false);
    expect(resolved.key.equals(key)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('in development, generates a private key file once and then reuses it', () => {
    const dataDir = path.join(dir, 'nested', 'data');
    const first = resolveMasterKey(devConfig(dataDir));
    const file = path.join(dataDir, 'master.key');

    expect(first.generated).toBe(true);
    expect(first.source).toBe(file);
    expect(first.key).toHaveLength(32);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64').equals(first.key)).toBe(true);

    const second = resolveMasterKey(devConfig(dataDir));
    expect(second.generated).toBe(false);
    expect(second.source).toBe(file);
    expect(second.key.equals(first.key)).toBe(true);
  });

  it('refuses a key file that does not hold 32 bytes', () => {
    fs.writeFileSync(path.join(dir, 'master.key'), `${randomBytes(16).toString('base64')}\n`);
    expect(() => resolveMasterKey(devConfig(dir))).toThrow(/32-byte/);
  });

  it('in production without MASTER_KEY, throws and writes nothing', () => {
    const production: Config = { ...devConfig(dir), env: 'production', masterKey: undefined };
    expect(() => resolveMasterKey(production)).toThrow(/MASTER_KEY/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('in production, ignores a development key file', () => {
    fs.writeFileSync(path.join(dir, 'master.key'), `${randomBytes(32).toString('base64')}\n`);
    const production: Config = { ...devConfig(dir), env: 'production', masterKey: undefined };
    expect(() => resolveMasterKey(production)).toThrow(/MASTER_KEY/);
  });
});
