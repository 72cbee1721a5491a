#!/usr/bin/env node
/**
 * Checks a Kapija ledger download (kapija-activity.json) offline, with nothing but Node.js (20+):
 *
 *   node verify-ledger.mjs kapija-activity.json [audit-keys.json]
 *
 * audit-keys.json is the JWKS published at <issuer>/.well-known/kapija-audit-keys; without it the
 * keys inside the file are used, and their ids are printed to compare with the published ones.
 * Each entry of your own chain must match its SHA-256 hash and follow the one before from seq 1;
 * every signed checkpoint must match its entry; the closing Ed25519 signature must cover the digest
 * of every entry in the file. Exit 0 when all holds, 1 naming the first problem.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';

const GENESIS = '0'.repeat(64);

function canonicalJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}

const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest('hex');

function signedBy(keys, kid, statement, sig) {
  return keys.some((k) => {
    if (k.kid !== kid || k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof sig !== 'string') return false;
    try {
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' });
      return verify(null, Buffer.from(canonicalJson(statement), 'utf8'), key, Buffer.from(sig, 'base64url'));
    } catch {
      return false;
    }
  });
}

function check(doc, keys) {
  if (doc?.format !== 'kapija-ledger/1' || !Array.isArray(doc.entries)) return 'not a kapija-ledger/1 file';
  const own = `account:${doc.account}`;
  const digest = createHash('sha256');
  const seen = new Map();
  let expected = 1;
  let prev = GENESIS;
  let n = 0;
  for (const e of doc.entries) {
    n += 1;
    digest.update(`${canonicalJson(e)}\n`, 'utf8');
    seen.set(`${e.chain}\u0000${e.seq}`, e.hash);
    if (e.chain !== own) {
      if (e.subject_account_id !== doc.account) return `entry ${n} is not about this account`;
      continue;
    }
    const material = {
      id: e.id, chain: e.chain, seq: e.seq, at: e.at, actor: e.actor, action: e.action,
      subject_account_id: e.subject_account_id, client_id: e.client_id, ip: e.ip ?? null,
      details: e.details, prev_hash: e.prev_hash,
    };
    if (sha256(canonicalJson(material)) !== e.hash) return `entry ${n} (seq ${e.seq}) does not match its hash`;
    if (e.seq !== expected) return `seq ${expected} of the ledger is missing`;
    if (e.prev_hash !== prev) return `entry ${n} (seq ${e.seq}) does not follow the one before`;
    prev = e.hash;
    expected += 1;
  }
  for (const c of doc.checkpoints ?? []) {
    const statement = { typ: 'kapija-audit-head/1', chain: c.chain, seq: c.seq, hash: c.hash, signed_at: c.signed_at };
    if (!signedBy(keys, c.kid, statement, c.sig)) return `checkpoint of seq ${c.seq} has no valid signature`;
    if (c.chain !== own || seen.get(`${c.chain}\u0000${c.seq}`) !== c.hash) return `entry seq ${c.seq} differs from its signed checkpoint`;
  }
  const s = doc.signature ?? {};
  const statement = { typ: 'kapija-ledger/1', account: doc.account, count: n, digest: digest.digest('hex'), signed_at: s.signed_at };
  if (!signedBy(keys, s.kid, statement, s.sig)) return 'the closing signature does not match the entries (changed, added or removed)';
  return undefined;
}

const [file, keyFile] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node verify-ledger.mjs kapija-activity.json [audit-keys.json]\n');
  process.exit(64);
}
const doc = JSON.parse(readFileSync(file, 'utf8'));
const published = keyFile ? JSON.parse(readFileSync(keyFile, 'utf8')) : undefined;
const keys = published ? (Array.isArray(published.keys) ? published.keys : [published]) : (doc.keys ?? []);
const problem = check(doc, keys);
if (problem) {
  process.stderr.write(`ledger broken: ${problem}\n`);
  process.exit(1);
}
process.stdout.write(`ledger intact: ${doc.entries.length} entries, signed by audit key ${keys.map((k) => k.kid).join(', ')}\n`);
if (!published) process.stdout.write(`checked against the keys in the file itself: compare them with ${doc.keys_url}\n`);
