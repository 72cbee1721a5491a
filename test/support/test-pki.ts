/**
 * Certificates made at test time with the openssl command: a root CA and certificates it issues,
 * for WebAuthn attestation chains and for signing FIDO Metadata Service BLOBs.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCert {
  readonly key: KeyObject;
  readonly pem: string;
  readonly der: Buffer;
  readonly keyFile: string;
  readonly certFile: string;
}

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-pki-'));
const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

function load(keyFile: string, certFile: string): TestCert {
  const pem = fs.readFileSync(certFile, 'utf8');
  return { key: createPrivateKey(fs.readFileSync(keyFile)), pem, der: Buffer.from(new X509Certificate(pem).raw), keyFile, certFile };
}

/** A self-signed CA with a P-256 key. */
export function makeRootCa(cn: string): TestCert {
  const d = dir();
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30',
      '-subj', `/C=RS/O=Kapija Test/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    d,
  );
  return load(path.join(d, 'ca.key'), path.join(d, 'ca.pem'));
}

/**
 * An end-entity certificate issued by `ca`. `subject` in openssl's /K=V form; `aaguid` adds the FIDO
 * id-fido-gen-ce-aaguid extension (1.3.6.1.4.1.45724.1.1.4) an attestation certificate carries.
 */
export function issue(ca: TestCert, subject: string, opts: { aaguid?: string } = {}): TestCert {
  const d = dir();
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', subject], d);
  const ext = ['basicConstraints=critical,CA:FALSE'];
  if (opts.aaguid) ext.push(`1.3.6.1.4.1.45724.1.1.4=ASN1:FORMAT:HEX,OCTETSTRING:${opts.aaguid.replace(/-/g, '')}`);
  fs.writeFileSync(path.join(d, 'ext.cnf'), `${ext.join('\n')}\n`);
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-out', 'leaf.pem', '-days', '30', '-extfile', 'ext.cnf'], d);
  return load(path.join(d, 'leaf.key'), path.join(d, 'leaf.pem'));
}

/** A FIDO MDS3 BLOB: a JWT signed ES256 by `signer`, its certificate in x5c. */
export function makeMdsBlob(signer: TestCert, payload: Record<string, unknown>, x5c: readonly TestCert[] = [signer]): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = enc({ alg: 'ES256', typ: 'JWT', x5c: x5c.map((c) => c.der.toString('base64')) });
  const body = enc(payload);
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return `${head}.${body}.${sig.toString('base64url')}`;
}

/** A file in a fresh temporary folder. */
export function tempFile(name: string, content: string): string {
  const file = path.join(dir(), name);
  fs.writeFileSync(file, content);
  return file;
}
