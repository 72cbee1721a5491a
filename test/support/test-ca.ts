/**
 * A test eID public-key infrastructure made at test time with the openssl command (`openssl ca`,
 * which keeps an index of what it issued and revoked and signs CRLs from it): a root, an
 * intermediate issuing citizens' certificates (the shape of the Serbian ID card's qualified
 * certificate: the JMBG in the subject's serialNumber), a revoked one with the CRL that lists it, an
 * expired one, one not yet valid, one with the wrong key usage, one without a JMBG, one from a
 * foreign CA, and a server certificate for the TLS proxy.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CaFiles {
  readonly dir: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly pem: string;
}

export interface LeafFiles {
  readonly keyFile: string;
  readonly certFile: string;
  readonly pem: string;
  readonly key: string;
}

export interface TestEidPki {
  readonly dir: string;
  readonly root: CaFiles;
  readonly intermediate: CaFiles;
  readonly foreignRoot: CaFiles;
  /** Roots and intermediates, as an operator configures CERT_TRUST_ANCHORS. */
  readonly anchorsPem: string;
  readonly citizen: LeafFiles & { readonly jmbg: string };
  readonly revoked: LeafFiles;
  readonly expired: LeafFiles;
  readonly notYetValid: LeafFiles;
  readonly wrongKeyUsage: LeafFiles;
  readonly noJmbg: LeafFiles;
  readonly badJmbg: LeafFiles;
  readonly foreign: LeafFiles;
  /** A citizen's certificate under a second intermediate, which the root has revoked. */
  readonly underRevokedIntermediate: LeafFiles;
  /** The revoked intermediate (its certificate is in `anchorsPem` too, as an operator's stale bundle would have it). */
  readonly revokedIntermediate: CaFiles;
  /** DER CRLs: the intermediate's (lists `revoked`), the root's (lists `revokedIntermediate`), the revoked intermediate's (empty), the foreign root's. */
  readonly crls: { readonly intermediate: Buffer; readonly root: Buffer; readonly revokedIntermediate: Buffer; readonly foreign: Buffer };
  /** The TLS server certificate of the proxy (localhost, 127.0.0.1) and the CA that issued it. */
  readonly server: LeafFiles & { readonly caFile: string };
  /** A new CRL of the root or the intermediate (the next CRL number), as the CA publishes the next day. */
  nextCrl(which: 'root' | 'intermediate'): Buffer;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A JMBG with a valid date and check digit (see src/oidc/jmbg.ts): born `ddmmyyy`, region and serial `rrbbb`. */
export function makeJmbg(ddmmyyy: string, rrbbb: string): string {
  const a = [...`${ddmmyyy}${rrbbb}`].map(Number);
  const sum = 7 * (a[0]! + a[6]!) + 6 * (a[1]! + a[7]!) + 5 * (a[2]! + a[8]!) + 4 * (a[3]! + a[9]!) + 3 * (a[4]! + a[10]!) + 2 * (a[5]! + a[11]!);
  const check = 11 - (sum % 11);
  return `${ddmmyyy}${rrbbb}${check > 9 ? 0 : check}`;
}

/** openssl's date form for -startdate/-enddate. */
const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
const DAY = 24 * 3600 * 1000;

const EXTENSIONS = `
[ ca_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ citizen_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ encipher_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = clientAuth
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
`;

function caConfig(dir: string): string {
  return `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 7
policy = policy_any
unique_subject = no
email_in_dn = no
utf8 = yes
string_mask = utf8only
[ policy_any ]
countryName = optional
${EXTENSIONS}`;
}

function newCaDir(base: string, name: string): string {
  const dir = path.join(base, name);
  fs.mkdirSync(path.join(dir, 'newcerts'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'serial'), `4${randomBytes(4).toString('hex').slice(1)}\n`);
  fs.writeFileSync(path.join(dir, 'crlnumber'), '01\n');
  fs.writeFileSync(path.join(dir, 'ca.cnf'), caConfig(dir));
  return dir;
}

function caFiles(dir: string): CaFiles {
  const certFile = path.join(dir, 'ca.pem');
  return { dir, keyFile: path.join(dir, 'ca.key'), certFile, pem: fs.readFileSync(certFile, 'utf8') };
}

/** A self-signed root; RSA so that both RSA and ECDSA signatures (certificates, CRLs) are exercised. */
function makeRoot(base: string, name: string, cn: string): CaFiles {
  const dir = newCaDir(base, name);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '60', '-utf8',
    '-subj', `/C=RS/O=Kapija Test/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return caFiles(dir);
}

function request(dir: string, file: string, subject: string): string {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-utf8', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', subject], dir);
  return path.join(dir, `${file}.csr`);
}

function sign(ca: CaFiles, csr: string, out: string, ext: string, from: Date, to: Date): void {
  openssl(['ca', '-batch', '-config', path.join(ca.dir, 'ca.cnf'), '-preserveDN', '-notext', '-in', csr, '-out', out, '-extensions', ext,
    '-startdate', stamp(from), '-enddate', stamp(to)], ca.dir);
}

function leaf(ca: CaFiles, dir: string, file: string, subject: string, opts: { ext?: string; from?: Date; to?: Date } = {}): LeafFiles {
  const csr = request(dir, file, subject);
  const certFile = path.join(dir, `${file}.pem`);
  sign(ca, csr, certFile, opts.ext ?? 'citizen_ext', opts.from ?? new Date(Date.now() - DAY), opts.to ?? new Date(Date.now() + 20 * DAY));
  const keyFile = path.join(dir, `${file}.key`);
  return { keyFile, certFile, pem: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

function crl(ca: CaFiles, file: string): Buffer {
  const pemFile = path.join(ca.dir, `${file}.crl.pem`);
  openssl(['ca', '-batch', '-config', path.join(ca.dir, 'ca.cnf'), '-gencrl', '-out', pemFile], ca.dir);
  openssl(['crl', '-in', pemFile, '-outform', 'DER', '-out', `${file}.crl`], ca.dir);
  return fs.readFileSync(path.join(ca.dir, `${file}.crl`));
}

/** Makes the whole test PKI in a new temporary folder (about a second). */
export function makeTestEidPki(): TestEidPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-eid-'));
  const root = makeRoot(dir, 'root', 'Kapija Test eID Root');
  const interDir = newCaDir(dir, 'intermediate');
  const interCsr = request(interDir, 'ca', '/C=RS/O=Kapija Test/CN=Kapija Test eID Citizens CA');
  sign(root, interCsr, path.join(interDir, 'ca.pem'), 'ca_ext', new Date(Date.now() - 2 * DAY), new Date(Date.now() + 50 * DAY));
  const inter = caFiles(interDir);
  const otherDir = newCaDir(dir, 'revoked-intermediate');
  const otherCsr = request(otherDir, 'ca', '/C=RS/O=Kapija Test/CN=Kapija Test eID Withdrawn CA');
  sign(root, otherCsr, path.join(otherDir, 'ca.pem'), 'ca_ext', new Date(Date.now() - 2 * DAY), new Date(Date.now() + 50 * DAY));
  const revokedIntermediate = caFiles(otherDir);
  openssl(['ca', '-batch', '-config', path.join(root.dir, 'ca.cnf'), '-revoke', revokedIntermediate.certFile, '-crl_reason', 'cACompromise'], root.dir);
  const foreignRoot = makeRoot(dir, 'foreign', 'Some Other Root');
  const leaves = path.join(dir, 'leaves');
  fs.mkdirSync(leaves);

  const jmbg = makeJmbg('0101990', '71000');
  const citizenSubject = (j: string, given: string, family: string) => `/C=RS/serialNumber=PNORS-${j}/GN=${given}/SN=${family}/CN=${given} ${family} ${j}`;
  const citizen = { ...leaf(inter, leaves, 'citizen', citizenSubject(jmbg, 'Петар', 'Петровић')), jmbg };
  const revoked = leaf(inter, leaves, 'revoked', citizenSubject(makeJmbg('1502985', '71001'), 'Марко', 'Марковић'));
  openssl(['ca', '-batch', '-config', path.join(inter.dir, 'ca.cnf'), '-revoke', revoked.certFile, '-crl_reason', 'keyCompromise'], inter.dir);
  const expired = leaf(inter, leaves, 'expired', citizenSubject(makeJmbg('0303970', '71002'), 'Jana', 'Janković'), {
    from: new Date(Date.now() - 40 * DAY),
    to: new Date(Date.now() - DAY),
  });
  const notYetValid = leaf(inter, leaves, 'not-yet-valid', citizenSubject(makeJmbg('0404975', '71003'), 'Ana', 'Anić'), {
    from: new Date(Date.now() + 5 * DAY),
    to: new Date(Date.now() + 30 * DAY),
  });
  const wrongKeyUsage = leaf(inter, leaves, 'wrong-key-usage', citizenSubject(makeJmbg('0505980', '71004'), 'Ivan', 'Ivić'), { ext: 'encipher_ext' });
  const noJmbg = leaf(inter, leaves, 'no-jmbg', '/C=RS/GN=Nikola/SN=Nikolić/CN=Nikola Nikolić');
  const badJmbg = leaf(inter, leaves, 'bad-jmbg', '/C=RS/serialNumber=PNORS-0101990710009/GN=Zoran/SN=Zorić/CN=Zoran Zorić');
  const foreign = leaf(foreignRoot, leaves, 'foreign', citizenSubject(makeJmbg('0606985', '71005'), 'Mila', 'Milić'));
  const underRevokedIntermediate = leaf(revokedIntermediate, leaves, 'under-revoked-ca', citizenSubject(makeJmbg('0707988', '71006'), 'Vesna', 'Vesić'));
  const server = { ...leaf(foreignRoot, leaves, 'server', '/C=RS/O=Kapija Test/CN=localhost', { ext: 'server_ext' }), caFile: foreignRoot.certFile };

  return {
    dir,
    root,
    intermediate: inter,
    foreignRoot,
    anchorsPem: `${root.pem}${inter.pem}${revokedIntermediate.pem}`,
    citizen,
    revoked,
    expired,
    notYetValid,
    wrongKeyUsage,
    noJmbg,
    badJmbg,
    foreign,
    underRevokedIntermediate,
    revokedIntermediate,
    crls: {
      intermediate: crl(inter, 'intermediate'),
      root: crl(root, 'root'),
      revokedIntermediate: crl(revokedIntermediate, 'revoked-intermediate'),
      foreign: crl(foreignRoot, 'foreign'),
    },
    server,
    nextCrl: (which) => crl(which === 'root' ? root : inter, `${which}-next`),
  };
}
