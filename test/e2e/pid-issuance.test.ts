/**
 * Kapija's PID in a wallet: a test wallet built from the OpenWallet Foundation libraries obtains
 * the PID through the portal's credential offer (authorization code, the citizen signs in at
 * Kapija) and through a registration desk's offer (pre-authorized code with tx_code). The
 * credential is checked as a verifier would: signature with the published issuer keys, every PID
 * attribute its own disclosure, holder binding, status; a revoked credential shows revoked in the
 * published status list. The credential issuer metadata carries the specification's required fields.
 */
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { ES256, digest } from '@sd-jwt/crypto-nodejs';
import { decodeProtectedHeader } from 'jose';
import { ledgerChain } from '../../src/account/ledger.js';
import { en } from '../../src/i18n/messages/en.js';
import { PID_ATTRIBUTES, PID_CREDENTIAL_CONFIGURATION_ID, PID_FORMAT, PID_VCT } from '../../src/wallet/pid.js';
import { kapijaForSuite } from '../support/kapija.js';
import { newHolderKey, obtainPid, TestWallet } from '../support/wallet/obtain.js';
import { Agent, issuerKeys, offerUri, portalOffer, publishedStatus, registerWallet, verifiedCitizen, walletSignIn } from '../support/wallet/fixtures.js';

const server = kapijaForSuite();

/** The citizen's ledger entries about PIDs, oldest first. */
const pidLedger = async (accountId: string) =>
  (await server.kapija.audit.list({ chain: ledgerChain(accountId), action: 'ledger.' })).filter((e) => e.action.startsWith('ledger.pid_')).reverse();

/** Verifies the SD-JWT VC's signature with the issuer's published keys and returns its disclosed claims. */
async function verified(credential: string) {
  const { jwks } = await issuerKeys(server.url);
  const { kid } = decodeProtectedHeader(credential.split('~')[0]!);
  const key = jwks.keys.find((k) => k.kid === kid)!;
  const sdjwt = new SDJwtVcInstance({ verifier: await ES256.getVerifier(key), hasher: digest, hashAlg: 'sha-256' });
  return { sdjwt, result: await sdjwt.verify(credential) };
}

describe('PID issuance to a wallet', () => {
  test('the portal offer: the wallet signs the citizen in (authorization code) and receives an SD-JWT VC with every attribute disclosable', async () => {
    const { kapija, url } = server;
    const clientId = await registerWallet(kapija);
    const citizen = await verifiedCitizen(kapija);
    const agent = new Agent();
    const offer = await portalOffer(agent, url, citizen);
    const { credential, holderKey } = await obtainPid({ offer, clientId, authorize: { redirectUri: 'http://127.0.0.1:9/wallet-callback', signIn: walletSignIn(agent, citizen) } });

    const header = decodeProtectedHeader(credential.split('~')[0]!);
    expect(header).toMatchObject({ typ: PID_FORMAT, alg: 'ES256' });
    expect((await issuerKeys(url)).jwks.keys.map((k) => k.kid)).toContain(header.kid);
    // The engine's ID-token keys never sign a credential.
    const jwks = (await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).not.toContain(header.kid);

    const { sdjwt, result } = await verified(credential);
    const payload = result.payload as Record<string, unknown>;
    expect(payload).toMatchObject({
      iss: url,
      vct: PID_VCT,
      issuing_country: 'RS',
      family_name: 'Jovanović',
      given_name: 'Jelena',
      birthdate: '1999-12-31',
      nationalities: ['RS'],
      personal_administrative_number: citizen.jmbg,
    });
    expect((payload.cnf as { jwk: Record<string, unknown> }).jwk).toEqual({ kty: 'EC', crv: 'P-256', x: holderKey.publicJwk.x, y: holderKey.publicJwk.y });
    const exp = payload.exp as number;
    const iat = payload.iat as number;
    expect(exp - iat).toBe(30 * 24 * 3600);

    // Each attribute is a disclosure of its own, and only they are: the rest is in the clear.
    const decoded = await sdjwt.decode(credential);
    const disclosed = (decoded.disclosures ?? []).map((d) => d.key).sort();
    expect(disclosed).toEqual([...PID_ATTRIBUTES].sort());
    const signedPayload = decoded.jwt!.payload as Record<string, unknown>;
    for (const a of PID_ATTRIBUTES) expect(signedPayload[a]).toBeUndefined();
    expect(signedPayload._sd_alg).toBe('sha-256');
    expect((signedPayload._sd as unknown[]).length).toBe(PID_ATTRIBUTES.length);

    // Selective disclosure: the holder shows the date of birth alone.
    const presented = await sdjwt.present(credential, { birthdate: true });
    const shown = (await sdjwt.decode(presented)).disclosures ?? [];
    expect(shown.map((d) => d.key)).toEqual(['birthdate']);
    const claims = (await sdjwt.getClaims(presented)) as Record<string, unknown>;
    expect(claims.birthdate).toBe('1999-12-31');
    expect(claims.personal_administrative_number).toBeUndefined();
    expect(claims.family_name).toBeUndefined();

    // Valid in the published status list; recorded in the registry and the citizen's ledger.
    const status = (payload.status as { status_list: { idx: number; uri: string } }).status_list;
    expect(await publishedStatus(url, status)).toBe(0);
    const [record] = await kapija.pid.list(citizen.account.id);
    // Password and TOTP are substantial: the PID's level is the sign-in's, below the identity's high.
    expect(record).toMatchObject({ channel: 'portal', clientId, level: 'substantial', listIdx: status.idx, revokedAt: null });
    const ledger = await pidLedger(citizen.account.id);
    expect(ledger.map((e) => e.action)).toEqual(['ledger.pid_issued']);
    expect(ledger[0]!.details).toMatchObject({ credential: record!.id, level: 'substantial', channel: 'portal', attributes: [...PID_ATTRIBUTES] });
    // The citizen reads it on the activity page, the wallet named; no attribute's value is there.
    const activity = await agent.request(`${url}/account/activity`);
    expect(activity.status).toBe(200);
    expect(activity.body).toContain(en['ledger.pid_issued']);
    expect(activity.body).toContain('Test wallet');
    expect(activity.body).not.toContain(citizen.jmbg);
    // And in the data export.
    const exported = JSON.parse((await agent.request(`${url}/account/data/export.json`)).body) as { wallet_credentials: { id: string; channel: string; revoked_at: string | null }[] };
    expect(exported.wallet_credentials).toEqual([expect.objectContaining({ id: record!.id, channel: 'portal', revoked_at: null })]);
  });

  test('the desk offer: the wallet redeems the pre-authorized code with the tx_code; revoking shows revoked in the published status list', async () => {
    const { kapija, url } = server;
    const clientId = await registerWallet(kapija);
    const citizen = await verifiedCitizen(kapija, 'substantial');
    const made = await kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
    expect(made.txCode).toMatch(/^\d{6}$/);
    const { credential } = await obtainPid({ offer: offerUri(made.offer), clientId, txCode: made.txCode });
    const { result } = await verified(credential);
    const payload = result.payload as Record<string, unknown>;
    expect(payload.personal_administrative_number).toBe(citizen.jmbg);
    const status = (payload.status as { status_list: { idx: number; uri: string } }).status_list;
    const [record] = await kapija.pid.list(citizen.account.id);
    expect(record).toMatchObject({ channel: 'desk', level: 'substantial' });
    expect(await publishedStatus(url, status)).toBe(0);
    // Built once and served again (a list is costly to build), until a revocation here.
    const [a, b] = await Promise.all([fetch(status.uri).then((r) => r.text()), fetch(status.uri).then((r) => r.text())]);
    expect(b).toBe(a);

    await kapija.pid.revokeOwn(citizen.account.id, record!.id);
    expect(await publishedStatus(url, status)).toBe(1);
    const ledger = await pidLedger(citizen.account.id);
    expect(ledger.map((e) => e.action)).toEqual(['ledger.pid_issued', 'ledger.pid_revoked']);
    expect(ledger.find((e) => e.action === 'ledger.pid_revoked')!.details).toMatchObject({ credential: record!.id, reason: 'citizen' });
  });

  test('credential issuer metadata carries the fields OpenID4VCI 1.0 requires, and the wallet library accepts it', async () => {
    const { url } = server;
    const res = await fetch(`${url}/.well-known/openid-credential-issuer`);
    expect(res.status).toBe(200);
    const m = (await res.json()) as Record<string, unknown>;
    // §12.2.4: credential_issuer, credential_endpoint, credential_configurations_supported (REQUIRED).
    expect(m.credential_issuer).toBe(url);
    expect(m.credential_endpoint).toBe(`${url}/credential`);
    expect(typeof m.nonce_endpoint).toBe('string');
    expect(new URL(m.nonce_endpoint as string).origin).toBe(url);
    expect(m.authorization_servers === undefined || (Array.isArray(m.authorization_servers) && (m.authorization_servers as string[]).includes(url))).toBe(true);
    const configurations = m.credential_configurations_supported as Record<string, Record<string, unknown>>;
    const pid = configurations[PID_CREDENTIAL_CONFIGURATION_ID]!;
    // §12.2.4 / Appendix A.3: format, and for dc+sd-jwt the vct.
    expect(pid.format).toBe(PID_FORMAT);
    expect(pid.vct).toBe(PID_VCT);
    // proof_types_supported needs cryptographic_binding_methods_supported, and each proof type its algorithms.
    expect(pid.cryptographic_binding_methods_supported).toEqual(['jwk']);
    expect((pid.proof_types_supported as { jwt: { proof_signing_alg_values_supported: string[] } }).jwt.proof_signing_alg_values_supported).toEqual(['ES256']);
    expect(pid.credential_signing_alg_values_supported).toEqual(['ES256']);
    const claims = (pid.credential_metadata as { claims: { path: string[] }[] }).claims.map((c) => c.path.join('.'));
    expect(claims.sort()).toEqual([...PID_ATTRIBUTES].sort());
    // The OWF wallet library parses and accepts the issuer's metadata and its authorization server's.
    const parsed = await new TestWallet('metadata-check', await newHolderKey()).client.resolveIssuerMetadata(url);
    expect(parsed.credentialIssuer.credential_issuer).toBe(url);
    expect(parsed.authorizationServers.map((s) => s.issuer)).toEqual([url]);
    // The issuer's keys as a verifier in the same process reads them are those published.
    expect(await server.kapija.pid.publicJwks()).toEqual((await issuerKeys(url)).jwks);
    // The authorization server advertises the pre-authorized code grant.
    const as = (await (await fetch(`${url}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[] };
    expect(as.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:pre-authorized_code');
  });
});
