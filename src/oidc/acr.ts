/**
 * Authentication context classes (acr) derived from the methods used (amr, RFC 8176), like Ory
 * Kratos derives the authenticator assurance level. The defaults are the eIDAS levels of assurance
 * (Commission Implementing Regulation (EU) 2015/1502).
 */
export const ACR = {
  low: 'http://eidas.europa.eu/LoA/low',
  substantial: 'http://eidas.europa.eu/LoA/substantial',
  high: 'http://eidas.europa.eu/LoA/high',
} as const;

export type AcrLevel = keyof typeof ACR;
export type Amr = 'pwd' | 'otp' | 'hwk' | 'swk' | 'user' | 'pin' | 'mfa';

/** The level reached by a set of methods. Password alone is low. */
export function levelFor(amr: readonly Amr[]): AcrLevel {
  const has = (m: Amr) => amr.includes(m);
  if (has('pwd') && has('hwk')) return 'high';
  if (has('hwk') && (has('user') || has('pin'))) return 'high';
  if ((has('pwd') && (has('otp') || has('swk'))) || (has('swk') && (has('user') || has('pin')))) return 'substantial';
  return 'low';
}

export function acrFor(amr: readonly Amr[]): string {
  return ACR[levelFor(amr)];
}
