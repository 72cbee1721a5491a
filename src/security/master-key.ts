/**
 * The master key that encrypts every secret at rest. Production takes it from MASTER_KEY only;
 * development generates `master.key` in the data folder once and says so loudly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';

export interface MasterKey {
  readonly key: Buffer;
  /** 'env' or the path of the development key file. */
  readonly source: string;
  readonly generated: boolean;
}

export function resolveMasterKey(config: Config): MasterKey {
  if (config.masterKey) return { key: config.masterKey, source: 'env', generated: false };
  if (config.env === 'production') throw new Error('MASTER_KEY: required when NODE_ENV=production');
  const file = path.join(config.dataDir, 'master.key');
  try {
    const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file}: not a 32-byte base64 key`);
    return { key, source: file, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    fs.writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return resolveMasterKey(config);
    throw err;
  }
  return { key, source: file, generated: true };
}
