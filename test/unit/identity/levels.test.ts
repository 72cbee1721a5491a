import { honestLevel, identitySupports, IDENTITY_LEVELS } from '../../../src/identity/levels.js';
import { LEVELS } from '../../../src/oidc/acr.js';

describe('honest acr: the lower of the identity level and the authentication level', () => {
  test.each([
    ['high', 'none', 'low'],
    ['high', 'low', 'low'],
    ['high', 'substantial', 'substantial'],
    ['high', 'high', 'high'],
    ['substantial', 'high', 'substantial'],
    ['substantial', 'none', 'low'],
    ['low', 'high', 'low'],
    ['low', 'none', 'low'],
  ] as const)('authentication %s with identity %s asserts %s', (auth, identity, expected) => {
    expect(honestLevel(auth, identity)).toBe(expected);
  });

  test('never above either level', () => {
    for (const auth of LEVELS) {
      for (const identity of IDENTITY_LEVELS) {
        const out = LEVELS.indexOf(honestLevel(auth, identity));
        expect(out).toBeLessThanOrEqual(LEVELS.indexOf(auth));
        expect(out).toBeLessThanOrEqual(Math.max(0, IDENTITY_LEVELS.indexOf(identity) - 1));
      }
    }
  });

  test('an identity supports a need at or below its level; low needs no proofing', () => {
    expect(identitySupports('none', 'low')).toBe(true);
    expect(identitySupports('none', 'substantial')).toBe(false);
    expect(identitySupports('low', 'substantial')).toBe(false);
    expect(identitySupports('substantial', 'substantial')).toBe(true);
    expect(identitySupports('substantial', 'high')).toBe(false);
    expect(identitySupports('high', 'high')).toBe(true);
  });
});
