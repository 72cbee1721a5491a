/**
 * The factor registry: which second factors an account has, which are offered for a level, the rule
 * that a factor that may not stand alone (recovery codes) is usable only beside one that may, and
 * what the portal, the console and a reset learn from it.
 */
import { registryOf, type Factor } from '../../../src/factors/registry.js';
import type { Amr } from '../../../src/assurance/levels.js';

const second = (id: string, amr: Amr[], more: Partial<Factor> = {}): Factor => ({
  id,
  step: 'second',
  standsAlone: true,
  listed: true,
  labels: { name: `label.${id}`, heading: `heading.${id}` },
  second: { expectedAmr: async () => amr, verify: async () => ({ accountId: 'a', amr }), form: { kind: 'code', label: 'l', submit: 's' } },
  ...more,
});
const password: Factor = { id: 'password', step: 'first', standsAlone: false, listed: false, storesCredentials: false, labels: { name: 'p', heading: 'p' }, first: { identify: async () => ({ accountId: 'a', amr: ['pwd'] }) } };
const codes = second('recovery', ['otp'], { standsAlone: false, listed: false });
const factors = [password, second('totp', ['otp']), second('key', ['hwk']), codes];
const registryWith = (types: string[]) => registryOf(factors, { enrolledTypes: async () => new Set(types) });

describe('factor registry', () => {
  it('lists an account’s second factors in registration order, recovery codes only beside one that stands alone', async () => {
    expect((await registryWith(['recovery', 'key', 'totp']).enrolled('a')).map((f) => f.id)).toEqual(['totp', 'key', 'recovery']);
    expect(await registryWith(['recovery']).enrolled('a')).toEqual([]);
    expect(await registryWith(['recovery']).hasSecondFactor('a')).toBe(false);
    expect(await registryWith(['totp']).hasSecondFactor('a')).toBe(true);
  });

  it('offers only the factors that reach the level needed from what was proven', async () => {
    const r = registryWith(['totp', 'key', 'recovery']);
    expect((await r.offered('a', ['pwd'], 'substantial')).map((f) => f.id)).toEqual(['totp', 'key', 'recovery']);
    expect((await r.offered('a', ['pwd'], 'high')).map((f) => f.id)).toEqual(['key']);
  });

  it('refuses a factor that may not stand alone when the account has none that may', async () => {
    await expect(registryWith(['recovery']).assertUsable(codes, 'a')).rejects.toMatchObject({ code: 'factor.recovery.not_alone', status: 400 });
    await expect(registryWith(['recovery', 'totp']).assertUsable(codes, 'a')).resolves.toBeUndefined();
  });

  it('tells the portal and the console what a credential is, and a reset every type that keeps credentials', () => {
    const r = registryWith([]);
    expect([r.listed('totp'), r.listed('recovery'), r.listed('unknown')]).toEqual([true, false, false]);
    expect([r.standsAlone('key'), r.standsAlone('recovery'), r.standsAlone('password')]).toEqual([true, false, false]);
    expect(r.label('totp')).toBe('label.totp');
    expect(r.credentialTypes()).toEqual(['totp', 'key', 'recovery']);
    expect(r.firstFactors().map((f) => f.id)).toEqual(['password']);
  });

  it('names a finished sign-in by the factor its amr point to: the second factor that decided the level, else the first', () => {
    const card: Factor = { ...password, id: 'card', amr: ['sc'] };
    const declared = [{ ...password, amr: ['pwd'] }, second('totp', ['otp'], { amr: ['otp'] }), second('key', ['hwk'], { amr: ['hwk', 'swk'] }), second('recovery', ['otp'], { standsAlone: false, listed: false, amr: ['otp'] }), card] as Factor[];
    const r = registryOf(declared, { enrolledTypes: async () => new Set() });
    expect(r.factorOf(['pwd', 'otp'])?.id).toBe('totp');
    expect(r.factorOf(['hwk', 'user', 'pin'])?.id).toBe('key');
    expect(r.factorOf(['swk', 'user'])?.id).toBe('key');
    expect(r.factorOf(['pwd'])?.id).toBe('password');
    expect(r.factorOf(['sc', 'pin'])?.id).toBe('card');
    expect(r.factorOf(['mfa'])).toBeUndefined();
    // A factor that declares no amr is never named.
    expect(registryWith([]).factorOf(['pwd', 'otp'])).toBeUndefined();
  });

  it('refuses two factors with one id, and an id that is not a path segment', () => {
    expect(() => registryOf([...factors, second('totp', ['otp'])], { enrolledTypes: async () => new Set() })).toThrow(/twice/);
    expect(() => registryOf([second('../x', ['otp'])], { enrolledTypes: async () => new Set() })).toThrow(/path segment/);
  });

  it('answers 404 for an id nobody registered', () => {
    expect(() => registryWith([]).require('sms')).toThrow(expect.objectContaining({ code: 'request.not_found', status: 404 }));
  });
});
