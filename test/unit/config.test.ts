/**
 * loadConfig: defaults, one-line errors naming the variable, and the production refusals.
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../src/config.js';

const MASTER_KEY = randomBytes(32).toString('base64');
const PRODUCTION = {
  NODE_ENV: 'production',
  MASTER_KEY,
  ISSUER: 'https://kapija.gov.example',
  DATABASE_URL: 'postgres://kapija@db.internal:5432/kapija',
};

/** The ConfigError thrown by loadConfig(env), or a failure if it does not throw one. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe('loadConfig defaults', () => {
  it('gives a development configuration with SQLite in ./data', () => {
    const config = loadConfig({});
    const dataDir = path.resolve('./data');
    // The settings every deployment relies on; newer sections are tested where they are used.
    expect(config).toMatchObject({
      env: 'development',
      port: 3000,
      host: '127.0.0.1',
      issuer: 'http://localhost:3000',
      database: { client: 'sqlite', filename: path.join(dataDir, 'kapija.sqlite') },
      dataDir,
      masterKey: undefined,
      logLevel: 'info',
      argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
      trustProxy: false,
      ttl: { session: 12 * 3600, accessToken: 600, refreshToken: 14 * 24 * 3600 },
      purgeIntervalSeconds: 600,
      allowPrivateNetworkFetch: true, // development: back-channel logout to services on this machine (the Quick start)
      defaultLocale: 'sr-Cyrl',
      requireSecondFactor: true,
      webauthn: { rpId: 'localhost', rpName: 'Kapija', origins: ['http://localhost:3000'] },
    });
  });

  it('is frozen, nested objects included', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.database)).toBe(true);
    expect(Object.isFrozen(config.ttl)).toBe(true);
    expect(Object.isFrozen(config.webauthn.origins)).toBe(true);
  });

  it('reads only the environment it is given, and treats empty values as unset', () => {
    const saved = process.env.PORT;
    process.env.PORT = '4321';
    try {
      expect(loadConfig({}).port).toBe(3000);
      expect(loadConfig({ PORT: '' }).port).toBe(3000);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  it('parses values: numbers, booleans, a trailing-slash issuer, PostgreSQL, the master key', () => {
    const config = loadConfig({
      PORT: '8080',
      TRUST_PROXY: 'yes',
      REQUIRE_SECOND_FACTOR: '0',
      ISSUER: 'https://login.example.rs/',
      DATABASE_URL: 'postgresql://u@h/db',
      DATABASE_POOL_MAX: '25',
      MASTER_KEY,
      DEFAULT_LOCALE: 'en',
      WEBAUTHN_ORIGINS: 'https://login.example.rs, https://id.example.rs',
      WEBAUTHN_HWK_AAGUIDS: 'CB69481E-8FF7-4039-93EC-0A2729A154A8, ee882879-721c-4913-9775-3dfcce97072a',
    });
    expect(config.port).toBe(8080);
    expect(config.trustProxy).toBe(true);
    expect(config.trustProxyHops).toBe(1);
    expect(config.requireSecondFactor).toBe(false);
    expect(config.issuer).toBe('https://login.example.rs');
    expect(config.database).toEqual({ client: 'pg', url: 'postgresql://u@h/db', poolMax: 25 });
    expect(config.masterKey?.equals(Buffer.from(MASTER_KEY, 'base64'))).toBe(true);
    expect(config.defaultLocale).toBe('en');
    expect(config.webauthn).toEqual({
      rpId: 'login.example.rs',
      rpName: 'Kapija',
      origins: ['https://login.example.rs', 'https://id.example.rs'],
      hwkAaguids: ['cb69481e-8ff7-4039-93ec-0a2729a154a8', 'ee882879-721c-4913-9775-3dfcce97072a'],
    });
  });
});

describe('loadConfig errors name the variable', () => {
  it.each([
    ['PORT', 'not-a-port'],
    ['PORT', '70000'],
    ['NODE_ENV', 'staging'],
    ['ISSUER', 'not a url'],
    ['ISSUER', 'ftp://kapija.example'],
    ['DATABASE_URL', 'mysql://u@h/db'],
    ['DATABASE_POOL_MAX', '0'],
    ['MASTER_KEY', randomBytes(16).toString('base64')],
    ['LOG_LEVEL', 'verbose'],
    ['ARGON2_MEMORY_KIB', '1024'],
    ['ARGON2_TIME_COST', '1'],
    ['TRUST_PROXY', 'maybe'],
    ['SESSION_TTL_SECONDS', '-5'],
    ['DEFAULT_LOCALE', 'de'],
    ['WEBAUTHN_RP_ID', 'https://x/'],
    ['WEBAUTHN_ORIGINS', 'https://login.example.rs/path'],
    ['WEBAUTHN_HWK_AAGUIDS', 'yubikey'],
    ['WEBAUTHN_HWK_AAGUIDS', '00000000-0000-0000-0000-000000000000'],
  ])('%s=%s', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.message.startsWith(`${name}:`)).toBe(true);
    expect(err.message).not.toContain('\n');
  });
});

describe('loadConfig in production', () => {
  it('accepts a complete production configuration', () => {
    const config = loadConfig(PRODUCTION);
    expect(config.env).toBe('production');
    expect(config.database.client).toBe('pg');
    expect(config.issuer).toBe('https://kapija.gov.example');
  });

  it('refuses a missing MASTER_KEY', () => {
    expect(configError({ ...PRODUCTION, MASTER_KEY: undefined }).message).toMatch(/^MASTER_KEY:/);
  });

  it('refuses an http issuer', () => {
    expect(configError({ ...PRODUCTION, ISSUER: 'http://kapija.gov.example' }).message).toMatch(/^ISSUER:/);
  });

  it('refuses a missing DATABASE_URL (no embedded SQLite in production)', () => {
    expect(configError({ ...PRODUCTION, DATABASE_URL: undefined }).message).toMatch(/^DATABASE_URL:/);
  });

  it('keeps the console at a security key (high) unless ADMIN_MIN_ACR says otherwise', () => {
    expect(loadConfig(PRODUCTION).adminMinAcr).toBe('high');
    expect(loadConfig({ ...PRODUCTION, ADMIN_MIN_ACR: 'substantial' }).adminMinAcr).toBe('substantial');
  });

  it('refuses ALLOW_PRIVATE_NETWORK_FETCH', () => {
    expect(configError({ ...PRODUCTION, ALLOW_PRIVATE_NETWORK_FETCH: 'true' }).message).toMatch(/^ALLOW_PRIVATE_NETWORK_FETCH:/);
    expect(loadConfig({ ...PRODUCTION, ALLOW_PRIVATE_NETWORK_FETCH: 'false' }).allowPrivateNetworkFetch).toBe(false);
    expect(loadConfig({ ALLOW_PRIVATE_NETWORK_FETCH: 'true' }).allowPrivateNetworkFetch).toBe(true);
    // Off unless asked for, except in development (the Quick start's service runs on this machine).
    expect(loadConfig(PRODUCTION).allowPrivateNetworkFetch).toBe(false);
    expect(loadConfig({ NODE_ENV: 'test' }).allowPrivateNetworkFetch).toBe(false);
    expect(loadConfig({ NODE_ENV: 'development', ALLOW_PRIVATE_NETWORK_FETCH: 'false' }).allowPrivateNetworkFetch).toBe(false);
  });
});

describe('ADMIN_MIN_ACR outside production', () => {
  it('is substantial in development (NODE_ENV unset or development), so a developer with an authenticator app reaches the console', () => {
    expect(loadConfig({}).adminMinAcr).toBe('substantial');
    expect(loadConfig({ NODE_ENV: 'development' }).adminMinAcr).toBe('substantial');
    expect(loadConfig({ NODE_ENV: 'development', ADMIN_MIN_ACR: 'high' }).adminMinAcr).toBe('high');
  });

  it('is high in test, as in production', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).adminMinAcr).toBe('high');
  });
});

describe('certificate sign-in (CERT_*)', () => {
  const secret = 'x'.repeat(32);
  it('is off unless CERT_TRUST_ANCHORS is set', () => {
    expect(loadConfig({}).certificate).toBeUndefined();
  });

  it('reads the bundle path, the CRL URLs and the proxy secret', () => {
    const config = loadConfig({ CERT_TRUST_ANCHORS: 'eid/anchors.pem', CERT_PROXY_SECRET: secret, CERT_CRL_URLS: 'http://ca.example/a.crl, https://ca.example/b.crl' });
    expect(config.certificate).toEqual({ trustAnchorsFile: path.resolve('eid/anchors.pem'), crlUrls: ['http://ca.example/a.crl', 'https://ca.example/b.crl'], proxySecret: secret });
  });

  it('needs the proxy secret, of at least 32 characters, and http(s) CRL URLs', () => {
    expect(configError({ CERT_TRUST_ANCHORS: 'a.pem' }).message).toMatch(/^CERT_PROXY_SECRET: required with CERT_TRUST_ANCHORS/);
    expect(configError({ CERT_TRUST_ANCHORS: 'a.pem', CERT_PROXY_SECRET: 'short' }).message).toBe('CERT_PROXY_SECRET: must be at least 32 characters');
    expect(configError({ CERT_TRUST_ANCHORS: 'a.pem', CERT_PROXY_SECRET: secret, CERT_CRL_URLS: 'ldap://ca.example/crl' }).message).toBe('CERT_CRL_URLS: "ldap://ca.example/crl" is not an http(s) URL');
  });

  it('reads CERT_SIGNIN_URL: an origin of a host name other than the issuer’s, https in production', () => {
    const base = { CERT_TRUST_ANCHORS: 'a.pem', CERT_PROXY_SECRET: secret, ISSUER: 'https://kapija.example' };
    expect(loadConfig({ ...base, CERT_SIGNIN_URL: 'https://eid.kapija.example/' }).certificate?.signInUrl).toBe('https://eid.kapija.example');
    expect(loadConfig(base).certificate?.signInUrl).toBeUndefined();
    expect(configError({ ...base, CERT_SIGNIN_URL: 'https://eid.kapija.example/path' }).message).toMatch(/^CERT_SIGNIN_URL: .* is not an origin/);
    expect(configError({ ...base, CERT_SIGNIN_URL: 'javascript:alert(1)' }).message).toMatch(/^CERT_SIGNIN_URL: .* is not an origin/);
    // The same host name (another port) shares the cookies: refused.
    expect(configError({ ...base, CERT_SIGNIN_URL: 'https://kapija.example:8443' }).message).toMatch(/^CERT_SIGNIN_URL: must be a host name of its own/);
  });
});

describe('WALLET_TRUSTED_ISSUERS', () => {
  const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }] };

  it('is empty unless set, and reads issuers with inline keys or a jwks_uri', () => {
    expect(loadConfig({}).wallet.trustedIssuers).toEqual([]);
    const issuers = loadConfig({
      WALLET_TRUSTED_ISSUERS: JSON.stringify([
        { issuer: 'https://pid.example', level: 'high', jwks },
        { issuer: 'https://other.example', level: 'substantial', jwks_uri: 'https://other.example/jwks' },
      ]),
    }).wallet.trustedIssuers;
    expect(issuers).toEqual([
      { issuer: 'https://pid.example', level: 'high', jwks },
      { issuer: 'https://other.example', level: 'substantial', jwksUri: 'https://other.example/jwks' },
    ]);
  });

  it.each([
    ['not JSON', '[{', /^WALLET_TRUSTED_ISSUERS: not JSON/],
    ['a level that is not substantial or high', JSON.stringify([{ issuer: 'https://pid.example', level: 'low', jwks }]), /^WALLET_TRUSTED_ISSUERS: 0\.level/],
    ['neither jwks nor jwks_uri', JSON.stringify([{ issuer: 'https://pid.example', level: 'high' }]), /exactly one of jwks and jwks_uri/],
    ['both jwks and jwks_uri', JSON.stringify([{ issuer: 'https://pid.example', level: 'high', jwks, jwks_uri: 'https://pid.example/jwks' }]), /exactly one of jwks and jwks_uri/],
    ['an unknown property', JSON.stringify([{ issuer: 'https://pid.example', level: 'high', jwks, trust: 'all' }]), /^WALLET_TRUSTED_ISSUERS: /],
    ['an issuer listed twice', JSON.stringify([{ issuer: 'https://pid.example', level: 'high', jwks }, { issuer: 'https://pid.example', level: 'substantial', jwks }]), /listed twice/],
  ])('refuses %s, naming the variable', (_what, value, message) => {
    expect(configError({ WALLET_TRUSTED_ISSUERS: value }).message).toMatch(message);
  });

  it('asks for https issuers and jwks_uri in production', () => {
    expect(configError({ ...PRODUCTION, WALLET_TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'http://pid.example', level: 'high', jwks }]) }).message).toMatch(/must be https/);
    expect(configError({ ...PRODUCTION, WALLET_TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'https://pid.example', level: 'high', jwks_uri: 'http://pid.example/jwks' }]) }).message).toMatch(/must be https/);
  });
});
