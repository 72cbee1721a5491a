/**
 * `kapija` command line: migrate, client create|list, user create, keys rotate.
 * Errors exit non-zero with one clear line on stderr.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { openHandles, type StoreHandles } from '../app.js';
import { migrate, openStore } from '../store/db.js';
import { normaliseUsername } from '../store/accounts.js';
import { ACR } from '../oidc/acr.js';
import { isAcrLevel, isClientId, isSector, uriProblem } from '../oidc/client-metadata.js';
import { isEmail, isUsername } from '../http/validators.js';
import { isValidJmbg } from '../assurance/jmbg.js';
import fs from 'node:fs';
import type { AuditEntryInput } from '../store/audit.js';
import { parseAnchor, type AuditProblem } from '../audit/checkpoints.js';
import { verifyLedgerFile } from '../audit/ledger-file.js';
import { ROLES, type Role } from '../store/roles.js';
import { checkNewPassword, PASSWORD_MAX, PASSWORD_MIN } from '../factors/password/policy.js';
import { FIDO_MDS_ROOTS } from '../factors/webauthn/fido-mds-roots.js';
import { MdsError, hardwareCertified, pemCertificates, verifyMdsBlob } from '../factors/webauthn/metadata.js';
import { CrlError, TrustAnchorError, loadTrustAnchors, verifyCrl, type TrustAnchors } from '../factors/certificate/index.js';
import { createCertificateCrlRepository } from '../store/certificate-crls.js';
import { IDENTITY_USAGE, IdentityUsageError, identityProof, identityRevoke, registrarRole } from './identity.js';

export class UsageError extends Error {}
/** What the command would create is there already; the message names it. */
class ExistsError extends Error {}

/** Every change made here goes to the administrative audit trail, with the actor `cli`. */
function recordCli(h: StoreHandles, action: string, extra: Pick<AuditEntryInput, 'subjectAccountId' | 'clientId' | 'details'> = {}) {
  return h.audit.append({ chain: 'admin', actor: 'cli', action, ...extra });
}

const USAGE = `usage: kapija <command> [options]

  migrate                         apply pending database migrations
  client create --client-id ID --redirect-uri URI [--redirect-uri URI …]
                [--post-logout-redirect-uri URI …] [--backchannel-logout-uri URI]
                [--public] [--secret S] [--name NAME] [--scope "openid profile …"]
                [--grant-type T …] [--min-acr low|substantial|high]
                [--subject-type pairwise|public] [--sector HOST] [--json]
  client list [--json]
  user create --username U [--email E] [--given-name G] [--family-name F]
              [--birthdate YYYY-MM-DD] [--locale L]
              [--email-verified]   (password read from stdin)
  user totp-import --username U --seed BASE32 [--name NAME]
                                  provision an OATH hardware token (TOTP, 30 s, 6 digits)
  admin revoke --username U [--role admin|auditor]
                                  take a role away (recorded in the audit trail)
  keys rotate                     add new signing keys; old ones stay published until their tokens expire
  admin create --username U [--role admin|auditor] [--create]
                                  grant an administration role (with --create, create the user;
                                  password read from stdin)
  audit verify [--chain C] [--anchor F]
                                  check the audit log's hash chains, its signed checkpoints and the
                                  heads of an anchor file; exit 1 naming the first bad entry
  audit verify --file F [--key JWKS]
                                  check a downloaded ledger offline against the published audit keys
  audit anchor [--chain C] [--out F]
                                  sign the head of every chain and write them as an anchor to keep
                                  outside the database
  webauthn mds import FILE        store a FIDO Metadata Service BLOB (downloaded from
                                  https://mds3.fidoalliance.org/) after verifying its signature
                                  against the FIDO root certificate; it decides which security
                                  keys count as hardware keys (eIDAS high)
                [--root-certificate PEM]   another root (development and test only)
  certs refresh [--file F …]      fetch the eID CAs' revocation lists from CERT_CRL_URLS (or read
                                  them from files), verify each against CERT_TRUST_ANCHORS and
                                  store it for every instance; exit 1 if one is refused
${IDENTITY_USAGE}`;

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  let data = '';
  for await (const chunk of stdin) data += String(chunk);
  return data.replace(/\r?\n$/, '');
}

/** The password read from stdin for `username`, held to the same policy as the self-service pages. */
async function readNewPassword(stdin: NodeJS.ReadableStream, username: string): Promise<string> {
  const password = await readStdin(stdin);
  const problem = checkNewPassword(password, { username: normaliseUsername(username) });
  const why: Record<NonNullable<typeof problem>, string> = {
    too_short: `must be at least ${PASSWORD_MIN} characters`,
    too_long: `must be at most ${PASSWORD_MAX} characters`,
    common: 'is a commonly used or breached password',
    contains_username: 'must not contain the username',
  };
  if (problem) throw new UsageError(`the password (read from stdin) ${why[problem]}`);
  return password;
}

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  stdin: NodeJS.ReadableStream;
}

export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`kapija: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (!cmd || cmd === 'help' || cmd === '--help') {
    io.stdout(USAGE);
    return cmd ? 0 : 1;
  }
  let handles: StoreHandles | undefined;
  // knex logs a failed connection with its stack trace; the CLI reports it in one line instead.
  const quiet = { warn() {}, error() {}, deprecate() {}, debug() {} };
  const open = async () => {
    handles = openHandles(config, { db: openStore(config.database, quiet) });
    await migrate(handles.db);
    return handles;
  };
  try {
    switch (`${cmd} ${sub ?? ''}`.trim()) {
      case 'migrate': {
        const h = openHandles(config, { db: openStore(config.database, quiet) });
        handles = h;
        const applied = await migrate(h.db);
        io.stdout(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
        return 0;
      }
      case 'client create':
        return await clientCreate(await open(), rest, io);
      case 'client list':
        return await clientList(await open(), rest, io);
      case 'user create':
        return await userCreate(await open(), rest, io);
      case 'user totp-import':
        return await userTotpImport(await open(), rest, io);
      case 'admin create':
        return await adminCreate(await open(), rest, io);
      case 'admin revoke':
        return await adminRevoke(await open(), rest, io);
      case 'audit verify':
        return await auditVerify(open, rest, io);
      case 'audit anchor':
        return await auditAnchor(await open(), rest, io);
      case 'webauthn mds':
        return await webauthnMds(config, open, rest, io);
      case 'certs refresh':
        return await certsRefresh(config, open, rest, io);
      case 'identity proof':
        return await identityProof(await open(), rest, io.stdout);
      case 'identity revoke':
        return await identityRevoke(await open(), rest, io.stdout);
      case 'registrar grant':
        return await registrarRole(await open(), true, rest, io.stdout);
      case 'registrar revoke':
        return await registrarRole(await open(), false, rest, io.stdout);
      case 'keys rotate': {
        const h = await open();
        await h.keys.ensure();
        const ids = await h.keys.rotateSigning();
        await recordCli(h, 'admin.keys.rotated', { details: { kids: ids } });
        io.stdout(`new signing keys: ${ids.join(', ')}\nevery running instance signs with them from its next key check (within a minute); retired keys stay in JWKS until their tokens expire\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${[cmd, sub].filter(Boolean).join(' ')}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof IdentityUsageError) {
      io.stderr(`kapija: ${err.message}\n`);
      return 64;
    }
    if (err instanceof ExistsError) {
      io.stderr(`kapija: ${err.message}\n`);
      return 1;
    }
    if (isUniqueViolation(err)) {
      io.stderr('kapija: already exists\n');
      return 1;
    }
    if (isUnreachable(err)) {
      io.stderr(`kapija: cannot reach the database (${config.database.client === 'pg' ? 'DATABASE_URL' : config.database.filename}): ${describeError(err)}\n`);
      return 1;
    }
    io.stderr(`kapija: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    return 1;
  } finally {
    await handles?.db.destroy();
  }
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

/** The database could not be reached or opened: a connection error, not a failed statement. */
function isUnreachable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; errors?: unknown[] } | undefined;
  if (!e) return false;
  if (e.name === 'KnexTimeoutError') return true;
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', '3D000', '28P01', '28000', 'SQLITE_CANTOPEN'].includes(e.code ?? '')) return true;
  return Array.isArray(e.errors) && e.errors.some(isUnreachable);
}

function describeError(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: { message?: string }[] };
  const message = e.message || e.errors?.[0]?.message || e.code || String(err);
  return message.split('\n')[0]!;
}

function parse(args: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, unknown>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Kapija's URI rules for client metadata (oidc/client-metadata.ts), as a usage error. */
function checkUri(uri: string, label: string): string {
  const problem = uriProblem(uri, { production: false, nativeLoopback: false });
  if (problem === 'not_absolute') throw new UsageError(`${label}: "${uri}" is not an absolute URL`);
  if (problem === 'fragment') throw new UsageError(`${label}: "${uri}" must not contain a fragment`);
  if (problem === 'credentials') throw new UsageError(`${label}: "${uri}" must not contain credentials`);
  return uri;
}

async function clientCreate(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, {
    'client-id': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true },
    'backchannel-logout-uri': { type: 'string' },
    public: { type: 'boolean' },
    secret: { type: 'string' },
    name: { type: 'string' },
    scope: { type: 'string' },
    'grant-type': { type: 'string', multiple: true },
    'min-acr': { type: 'string' },
    'subject-type': { type: 'string' },
    sector: { type: 'string' },
    json: { type: 'boolean' },
  });
  const subjectType = (v['subject-type'] as string | undefined) ?? 'pairwise';
  if (subjectType !== 'pairwise' && subjectType !== 'public') throw new UsageError('--subject-type must be pairwise or public');
  const sector = v.sector as string | undefined;
  if (sector !== undefined && !isSector(sector)) throw new UsageError('--sector must be a host name');
  const clientId = v['client-id'] as string | undefined;
  if (!clientId) throw new UsageError('--client-id is required');
  if (!isClientId(clientId)) {
    throw new UsageError(`--client-id "${clientId}" is not valid: use letters, digits, . _ ~ - (at most 128)`);
  }
  const grantTypes = (v['grant-type'] as string[] | undefined) ?? ['authorization_code', 'refresh_token'];
  const redirectUris = ((v['redirect-uri'] as string[] | undefined) ?? []).map((u) => checkUri(u, '--redirect-uri'));
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) {
    throw new UsageError('--redirect-uri is required for the authorization code grant');
  }
  const isPublic = Boolean(v.public);
  if (isPublic && v.secret) throw new UsageError('--public clients have no secret');
  if (isPublic && grantTypes.includes('client_credentials')) throw new UsageError('--public clients cannot use client_credentials');
  const minAcr = v['min-acr'] as string | undefined;
  if (minAcr !== undefined && !isAcrLevel(minAcr)) throw new UsageError('--min-acr must be low, substantial or high');
  const secret = isPublic ? undefined : ((v.secret as string | undefined) ?? randomBytes(32).toString('base64url'));
  if (secret !== undefined && secret.length < 32) throw new UsageError('--secret must be at least 32 characters');

  const metadata: Record<string, unknown> & { client_id: string } = {
    client_id: clientId,
    client_name: (v.name as string | undefined) ?? clientId,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: ((v['post-logout-redirect-uri'] as string[] | undefined) ?? []).map((u) =>
      checkUri(u, '--post-logout-redirect-uri'),
    ),
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: isPublic ? 'none' : 'client_secret_basic',
    scope: (v.scope as string | undefined) ?? 'openid profile email offline_access',
  };
  if (v['backchannel-logout-uri']) {
    metadata.backchannel_logout_uri = checkUri(v['backchannel-logout-uri'] as string, '--backchannel-logout-uri');
    metadata.backchannel_logout_session_required = true;
  }
  if (minAcr) metadata['kapija_min_acr'] = ACR[minAcr];
  metadata.subject_type = subjectType;
  if (sector) metadata['kapija_sector'] = sector;
  // The client and its audit entry commit together, as in the admin API.
  await h.db.transaction(async (trx) => {
    try {
      await h.clients.create(metadata, secret, trx);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ExistsError(`client "${clientId}" already exists`);
      throw err;
    }
    await h.audit.append({ chain: 'admin', actor: 'cli', action: 'admin.client.created', clientId, details: { properties: Object.keys(metadata).sort() } }, trx);
  });
  if (v.json) {
    io.stdout(`${JSON.stringify({ ...metadata, ...(secret ? { client_secret: secret } : {}) })}\n`);
  } else {
    io.stdout(`client ${clientId} created\n`);
    if (secret) io.stdout(`client secret (shown once): ${secret}\n`);
  }
  return 0;
}

async function clientList(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { json: { type: 'boolean' } });
  const clients = await h.clients.list();
  if (v.json) {
    io.stdout(`${JSON.stringify(clients.map((c) => ({ ...c.metadata, enabled: c.enabled, has_secret: c.hasSecret })))}\n`);
  } else if (clients.length === 0) {
    io.stdout('no clients\n');
  } else {
    for (const c of clients) {
      io.stdout(`${c.clientId}\t${String(c.metadata.token_endpoint_auth_method)}\t${(c.metadata.redirect_uris as string[] | undefined)?.join(' ') ?? ''}\n`);
    }
  }
  return 0;
}

async function userCreate(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, {
    username: { type: 'string' },
    email: { type: 'string' },
    'given-name': { type: 'string' },
    'family-name': { type: 'string' },
    birthdate: { type: 'string' },
    locale: { type: 'string' },
    jmbg: { type: 'string' },
    'email-verified': { type: 'boolean' },
  });
  const jmbg = v.jmbg as string | undefined;
  if (jmbg !== undefined && !isValidJmbg(jmbg)) throw new UsageError('--jmbg is not a valid JMBG (13 digits, date of birth and check digit)');
  // A JMBG is part of a verified identity only: recorded by `identity proof` after a document check.
  if (jmbg !== undefined) throw new UsageError('--jmbg is recorded only with a document check: kapija identity proof --username U --jmbg … (see kapija help)');
  const username = v.username as string | undefined;
  if (!username) throw new UsageError('--username is required');
  if (!isUsername(normaliseUsername(username))) {
    throw new UsageError(`--username "${username}" is not valid: use 3 to 64 letters, digits, . _ @ -`);
  }
  const email = v.email as string | undefined;
  if (email !== undefined && !isEmail(email)) throw new UsageError('--email is not an e-mail address');
  const birthdate = v.birthdate as string | undefined;
  if (birthdate !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(birthdate)) throw new UsageError('--birthdate must be YYYY-MM-DD');
  const emailVerified = Boolean(v['email-verified']);
  if (emailVerified && email === undefined) throw new UsageError('--email-verified needs --email');
  if (await h.accounts.findByUsername(username)) throw new ExistsError(`user "${normaliseUsername(username)}" already exists`);
  const password = await readNewPassword(io.stdin, username);
  const account = await h.accounts.create(
    {
      username,
      email: email ?? null,
      emailVerified,
      givenName: (v['given-name'] as string | undefined) ?? null,
      familyName: (v['family-name'] as string | undefined) ?? null,
      birthdate: birthdate ?? null,
      locale: (v.locale as string | undefined) ?? null,
    },
    await h.passwords.hash(password),
  ).catch((err: unknown) => {
    throw isUniqueViolation(err) ? new ExistsError(`user "${normaliseUsername(username)}" already exists`) : err;
  });
  await recordCli(h, 'admin.account.created', { subjectAccountId: account.id });
  io.stdout(`user ${account.username} created (id ${account.id})\n`);
  return 0;
}

async function userTotpImport(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { username: { type: 'string' }, seed: { type: 'string' }, name: { type: 'string' } });
  const username = v.username as string | undefined;
  const seed = v.seed as string | undefined;
  if (!username) throw new UsageError('--username is required');
  if (!seed || !/^[A-Z2-7]{16,128}=*$/i.test(seed.replace(/\s/g, ''))) throw new UsageError('--seed must be a base32 secret of at least 16 characters');
  const account = await h.accounts.findByUsername(username);
  if (!account) throw new UsageError(`no user "${username}"`);
  await h.totp.importSeed(account.id, seed, (v.name as string | undefined) ?? 'Hardware token');
  const codes = (await h.recovery.remaining(account.id)) === 0 ? await h.recovery.issue(account.id) : [];
  await recordCli(h, 'admin.account.totp_imported', { subjectAccountId: account.id, details: { recovery_codes_issued: codes.length } });
  io.stdout(`TOTP token added for ${account.username}\n`);
  if (codes.length) io.stdout(`recovery codes (give them to the citizen; shown once):\n${codes.join('\n')}\n`);
  return 0;
}

async function adminCreate(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { username: { type: 'string' }, role: { type: 'string' }, create: { type: 'boolean' } });
  const username = v.username as string | undefined;
  if (!username) throw new UsageError('--username is required');
  const role = ((v.role as string | undefined) ?? 'admin') as Role;
  if (!ROLES.includes(role)) throw new UsageError('--role must be admin or auditor');
  let account = await h.accounts.findByUsername(username);
  if (v.create) {
    if (account) throw new UsageError(`user "${username}" already exists; leave out --create to grant the role`);
    if (!isUsername(normaliseUsername(username))) {
      throw new UsageError('--username must be 3 to 64 letters, digits, . _ @ -');
    }
    const password = await readNewPassword(io.stdin, username);
    account = await h.accounts.create({ username }, await h.passwords.hash(password));
    await recordCli(h, 'admin.account.created', { subjectAccountId: account.id });
    io.stdout(`user ${account.username} created (id ${account.id})\n`);
  }
  if (!account) throw new UsageError(`no user "${username}" (add --create to create it)`);
  const granted = await h.repos.roles.grant(account.id, role, 'cli');
  if (granted) {
    await h.audit.append({
      chain: 'admin',
      actor: 'cli',
      action: 'admin.role.granted',
      subjectAccountId: account.id,
      details: { role },
    });
  }
  io.stdout(granted ? `${account.username} is now ${role === 'admin' ? 'an admin' : 'an auditor'}\n` : `${account.username} already has the role ${role}\n`);
  return 0;
}

async function adminRevoke(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { username: { type: 'string' }, role: { type: 'string' } });
  const username = v.username as string | undefined;
  if (!username) throw new UsageError('--username is required');
  const role = ((v.role as string | undefined) ?? 'admin') as Role;
  if (!ROLES.includes(role)) throw new UsageError('--role must be admin or auditor');
  const account = await h.accounts.findByUsername(username);
  if (!account) throw new UsageError(`no user "${username}"`);
  const revoked = await h.repos.roles.revoke(account.id, role);
  if (revoked) {
    await h.audit.append({ chain: 'admin', actor: 'cli', action: 'admin.role.revoked', subjectAccountId: account.id, details: { role } });
  }
  io.stdout(revoked ? `${account.username} no longer has the role ${role}\n` : `${account.username} did not have the role ${role}\n`);
  return 0;
}

/** Reads a JSON file named on the command line. */
function readJson(file: string, label: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`${label}: cannot read "${file}"`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`${label}: "${file}" is not JSON`);
  }
}

function describeProblem(p: AuditProblem): string {
  const where = `chain ${p.chain} seq ${p.seq}`;
  if (p.source === 'chain') return `${where} ${p.reason === 'changed' ? 'was changed' : 'is missing'}`;
  const what = p.source === 'anchor' ? 'the anchor' : 'the checkpoint';
  const when = new Date(p.signedAt).toISOString();
  if (p.reason === 'bad_signature') return `${what} of ${where} is not signed by this Kapija's audit key`;
  if (p.reason === 'rewritten') return `${where} differs from ${what} signed at ${when} (rewritten)`;
  return `${where}, signed in ${what} at ${when}, is gone (newest entries removed${p.last !== undefined ? `; the chain ends at seq ${p.last}` : ''})`;
}

async function auditVerify(open: () => Promise<StoreHandles>, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { chain: { type: 'string' }, anchor: { type: 'string' }, file: { type: 'string' }, key: { type: 'string' } });
  if (v.file !== undefined) {
    if (v.chain !== undefined || v.anchor !== undefined) throw new UsageError('--file is checked on its own (no --chain or --anchor)');
    const keys = v.key === undefined ? undefined : readJson(v.key as string, '--key');
    const result = verifyLedgerFile(readJson(v.file as string, '--file'), keys);
    if (!result.ok) {
      io.stderr(`kapija: ledger broken: ${result.problem}\n`);
      return 1;
    }
    io.stdout(`ledger intact: ${result.entries} entries, signed by audit key ${result.keyIds.join(', ')}\n`);
    if (keys === undefined) io.stdout('checked against the keys in the file itself: compare them with the published keys (keys_url), or give them with --key\n');
    return 0;
  }
  if (v.key !== undefined) throw new UsageError('--key goes with --file');
  let anchor;
  if (v.anchor !== undefined) {
    try {
      anchor = parseAnchor(readJson(v.anchor as string, '--anchor'));
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`--anchor: ${(err as Error).message}`);
    }
  }
  const h = await open();
  const result = await h.checkpoints.verify({ ...(v.chain !== undefined ? { chain: v.chain as string } : {}), ...(anchor ? { anchor } : {}) });
  if (result.ok) {
    const extra = [result.checkpoints ? `${result.checkpoints} signed checkpoints` : '', anchor ? `${result.anchored} anchored heads` : ''].filter(Boolean);
    io.stdout(`audit log intact: ${result.checked} entries checked${extra.map((e) => `, ${e}`).join('')}\n`);
    return 0;
  }
  io.stderr(`kapija: audit log broken: ${describeProblem(result.firstBad!)}\n`);
  return 1;
}

async function auditAnchor(h: StoreHandles, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { chain: { type: 'string' }, out: { type: 'string' } });
  const anchor = await h.checkpoints.anchor(v.chain as string | undefined);
  const text = `${JSON.stringify(anchor, null, 1)}\n`;
  if (v.out === undefined) {
    io.stdout(text);
    return 0;
  }
  fs.writeFileSync(v.out as string, text, { flag: 'wx' });
  io.stdout(`anchor of ${anchor.heads.length} chain heads written to ${v.out as string}; keep it outside this database\n`);
  return 0;
}

async function webauthnMds(config: Config, open: () => Promise<StoreHandles>, args: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { 'root-certificate': { type: 'string' } }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [action, file, ...extra] = parsed.positionals;
  if (action !== 'import' || !file || extra.length) throw new UsageError('usage: kapija webauthn mds import FILE');
  const rootFile = parsed.values['root-certificate'];
  if (rootFile !== undefined && config.env === 'production') {
    throw new UsageError('--root-certificate is for development and test only; in production the BLOB must come from the FIDO Alliance');
  }
  let roots;
  let jwt: string;
  try {
    roots = rootFile === undefined ? FIDO_MDS_ROOTS.flatMap(pemCertificates) : pemCertificates(fs.readFileSync(rootFile, 'utf8'));
    jwt = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${(err as { path?: string }).path ?? 'the file'}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (roots.length === 0) throw new UsageError('--root-certificate holds no PEM certificate');
  let blob;
  try {
    blob = verifyMdsBlob(jwt, roots);
  } catch (err) {
    if (err instanceof MdsError) {
      io.stderr(`kapija: BLOB refused: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const h = await open();
  if (!(await h.repos.webauthnMetadata.add(blob))) {
    io.stderr(`kapija: BLOB refused: its serial number ${blob.no} is not greater than the one already imported\n`);
    return 1;
  }
  const hardware = blob.entries.filter(hardwareCertified).length;
  await h.audit.append({ chain: 'admin', actor: 'cli', action: 'webauthn.mds.imported', details: { no: blob.no, entries: blob.entries.length, hardware } });
  io.stdout(`FIDO metadata BLOB no. ${blob.no} imported: ${blob.entries.length} FIDO2 authenticator models, ${hardware} of them certified with hardware key protection\n`);
  if (blob.nextUpdate < new Date().toISOString().slice(0, 10)) {
    io.stdout(`warning: the BLOB's next update was due on ${blob.nextUpdate}; import a newer one soon\n`);
  }
  return 0;
}

/** Largest CRL `certs refresh` downloads or reads (national eID CRLs are a few MB at most). */
const CRL_MAX_BYTES = 64 * 1024 * 1024;
const CRL_FETCH_TIMEOUT_MS = 30_000;

async function fetchCrl(url: string): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(CRL_FETCH_TIMEOUT_MS), redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CrlError(`cannot be fetched: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (!response.ok) throw new CrlError(`cannot be fetched: HTTP ${response.status}`);
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > CRL_MAX_BYTES) throw new CrlError(`is larger than ${CRL_MAX_BYTES} bytes`);
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length > CRL_MAX_BYTES) throw new CrlError(`is larger than ${CRL_MAX_BYTES} bytes`);
  return body;
}

function readCrlFile(file: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new CrlError('cannot be read');
  }
  if (!stat.isFile()) throw new CrlError('is not a file');
  if (stat.size > CRL_MAX_BYTES) throw new CrlError(`is larger than ${CRL_MAX_BYTES} bytes`);
  return fs.readFileSync(file);
}

async function certsRefresh(config: Config, open: () => Promise<StoreHandles>, args: string[], io: CliIo): Promise<number> {
  const v = parse(args, { file: { type: 'string', multiple: true } });
  if (!config.certificate) throw new UsageError('CERT_TRUST_ANCHORS is not set: certificate sign-in is off');
  const files = (v.file as string[] | undefined) ?? [];
  const sources = files.length ? files.map((f) => ({ kind: 'file' as const, name: f })) : config.certificate.crlUrls.map((u) => ({ kind: 'url' as const, name: u }));
  if (sources.length === 0) throw new UsageError('no CRL to refresh: set CERT_CRL_URLS or give --file');
  let anchors: TrustAnchors;
  try {
    anchors = loadTrustAnchors(config.certificate.trustAnchorsFile);
  } catch (err) {
    if (err instanceof TrustAnchorError) throw new UsageError(`CERT_TRUST_ANCHORS: ${err.message}`);
    throw err;
  }
  const h = await open();
  const repo = createCertificateCrlRepository(h.db);
  let failed = 0;
  for (const source of sources) {
    try {
      const data = source.kind === 'url' ? await fetchCrl(source.name) : readCrlFile(source.name);
      const crl = await verifyCrl(data, anchors, new Date());
      const outcome = await repo.put({
        issuerFingerprint: crl.issuerFingerprint,
        issuer: crl.issuer,
        thisUpdate: crl.thisUpdate,
        nextUpdate: crl.nextUpdate,
        crlNumber: crl.crlNumber,
        revokedCount: crl.revoked.size,
        der: crl.der,
        source: source.name,
      });
      if (outcome === 'older') {
        failed += 1;
        io.stderr(`kapija: CRL from ${source.name} refused: older than the one stored for "${crl.issuer}"\n`);
        continue;
      }
      if (outcome === 'stored') {
        await h.audit.append({
          chain: 'admin',
          actor: 'cli',
          action: 'certs.crl.stored',
          details: { issuer: crl.issuer, crl_number: crl.crlNumber ?? null, revoked: crl.revoked.size, next_update: crl.nextUpdate.toISOString() },
        });
      }
      io.stdout(`${outcome === 'stored' ? 'stored' : 'unchanged'}: CRL of "${crl.issuer}"${crl.crlNumber ? ` no. ${crl.crlNumber}` : ''}, ${crl.revoked.size} revoked, next update ${crl.nextUpdate.toISOString()}\n`);
    } catch (err) {
      if (!(err instanceof CrlError)) throw err;
      failed += 1;
      io.stderr(`kapija: CRL from ${source.name} refused: ${err.message}\n`);
    }
  }
  // Every CA of the bundle issues certificates (roots their intermediates): each needs a current CRL.
  const now = Date.now();
  for (const anchor of anchors.all) {
    const head = await repo.head(anchor.fingerprint);
    if (!head || head.nextUpdate.getTime() <= now) {
      io.stdout(`warning: no current CRL of "${anchor.parsed.subject}": certificates it issued are refused until one is stored\n`);
    }
  }
  return failed ? 1 : 0;
}
