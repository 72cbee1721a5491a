/**
 * amr → acr: the eIDAS level each combination of methods reaches.
 */
import { ACR, acrFor, acrToAssert, completeAmr, levelFor, requiredLevel } from '../../../src/oidc/acr.js';

describe('levelFor / acrFor', () => {
  it('uses the eIDAS level-of-assurance URIs', () => {
    expect(ACR).toEqual({
      low: 'http://eidas.europa.eu/LoA/low',
      substantial: 'http://eidas.europa.eu/LoA/substantial',
      high: 'http://eidas.europa.eu/LoA/high',
    });
  });

  it.each([
    [[], 'low'],
    [['pwd'], 'low'],
    [['otp'], 'low'],
    [['hwk'], 'low'],
    [['swk'], 'low'],
    [['mfa'], 'low'],
    [['pin'], 'low'],
    [['pwd', 'otp'], 'substantial'],
    [['pwd', 'otp', 'mfa'], 'substantial'],
    [['otp', 'pwd'], 'substantial'],
    [['pwd', 'swk'], 'substantial'],
    [['swk', 'pin'], 'substantial'],
    [['swk', 'user'], 'low'],
    [['pwd', 'hwk'], 'high'],
    [['pwd', 'hwk', 'mfa'], 'high'],
    [['hwk', 'pin'], 'high'],
    [['pwd', 'otp', 'hwk'], 'high'],
    [['sc'], 'low'],
    [['sc', 'pin'], 'high'],
    [['unknown-method'], 'low'],
  ] as const)('%j → %s', (amr, level) => {
    expect(levelFor(amr)).toBe(level);
    expect(acrFor(amr)).toBe(ACR[level]);
  });
});

describe('completeAmr', () => {
  it.each([
    [['pwd'], ['pwd']],
    [['pwd', 'otp'], ['pwd', 'otp', 'mfa']],
    [['pwd', 'pwd', 'hwk'], ['pwd', 'hwk', 'mfa']],
    [['pwd', 'otp', 'mfa'], ['pwd', 'otp', 'mfa']],
    [['hwk', 'pin'], ['hwk', 'pin', 'mfa']],
    [['otp', 'hwk'], ['otp', 'hwk']],
    [['sc', 'pin'], ['sc', 'pin', 'mfa']],
  ])('%j → %j', (amr, expected) => {
    expect(completeAmr(amr)).toEqual(expected);
  });
});

describe('requiredLevel / acrToAssert', () => {
  it('raises the client minimum to the lowest acr value asked for', () => {
    expect(requiredLevel({})).toBe('low');
    expect(requiredLevel({ clientMinimum: ACR.substantial })).toBe('substantial');
    expect(requiredLevel({ acrValues: `${ACR.high} ${ACR.substantial}` })).toBe('substantial');
    expect(requiredLevel({ acrValues: ACR.low, clientMinimum: ACR.substantial })).toBe('substantial');
    expect(requiredLevel({ acrValues: 'urn:unknown' })).toBe('low');
    expect(requiredLevel({ essential: [ACR.high] })).toBe('high');
  });

  it('asserts the highest essential value that was met, else the level reached', () => {
    expect(acrToAssert('high', [ACR.substantial, ACR.low])).toBe(ACR.substantial);
    expect(acrToAssert('substantial', [ACR.high])).toBe(ACR.substantial);
    expect(acrToAssert('high', undefined)).toBe(ACR.high);
  });
});
