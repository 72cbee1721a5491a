/**
 * The assurance vocabulary shared by the factors (which yield amr values) and the engine (which
 * asserts the acr): a leaf module, importing nothing of Kapija.
 *
 * Authentication context classes (acr) derived from the methods used (amr, RFC 8176), the way Ory
 * Kratos derives its authenticator assurance level. The values are the eIDAS levels of assurance
 * (Commission Implementing Regulation (EU) 2015/1502), which the national scheme calls basic,
 * medium and high.
 *
 *   low          password alone
 *   substantial  password + TOTP (or a recovery code), password + synced passkey,
 *                or a synced passkey with user verification alone
 *   high         password + device-bound authenticator (security key),
 *                or a device-bound passkey with user verification alone
 *
 * Possession is counted by kind: a hardware-protected key (`hwk`, a smart card `sc`) reaches high
 * with something known (`pwd`, or the `pin` the key itself verified); a one-time code (`otp`, `sms`,
 * `tel`) or a key that may be in software (`swk`) reaches substantial with the password.
 *
 * A remembered browser (`kapija:remembered`, not an RFC 8176 value: there is none for it) is
 * possession of the browser a second factor was proven in within the last 30 days, shown by a
 * random cookie Kapija issued then. With the password it reaches substantial, never high: the
 * cookie is a bearer secret held in software, weaker than a key that proves possession.
 */
export const ACR = {
  low: 'http://eidas.europa.eu/LoA/low',
  substantial: 'http://eidas.europa.eu/LoA/substantial',
  high: 'http://eidas.europa.eu/LoA/high',
} as const;

export type AcrLevel = keyof typeof ACR;
/** Every authentication method reference of RFC 8176 §2 (a factor yields some of them). */
export type Amr =
  | 'face' | 'fpt' | 'geo' | 'hwk' | 'iris' | 'kba' | 'mca' | 'mfa' | 'otp' | 'pin' | 'pop' | 'pwd'
  | 'rba' | 'retina' | 'sc' | 'sms' | 'swk' | 'tel' | 'user' | 'vbm' | 'wia'
  | typeof REMEMBERED_BROWSER;

/** Kapija's own method reference: this sign-in's second factor was a browser remembered after an earlier one. */
export const REMEMBERED_BROWSER = 'kapija:remembered';

/** Possession of a hardware-protected key. */
const HARD_KEYS: readonly Amr[] = ['hwk', 'sc'];
/** Possession of something that may be copied: a one-time code generator, a phone, a software key. */
const SOFT_POSSESSION: readonly Amr[] = ['otp', 'sms', 'tel', 'swk', REMEMBERED_BROWSER];
/** Knowledge the citizen proves (the password, or a PIN an authenticator verified). */
const KNOWLEDGE: readonly Amr[] = ['pwd', 'pin'];

export const LEVELS: readonly AcrLevel[] = ['low', 'substantial', 'high'];
export const rank = (level: AcrLevel) => LEVELS.indexOf(level);

/** The level reached by a set of methods. */
export function levelFor(amr: readonly string[]): AcrLevel {
  const has = (m: Amr) => amr.includes(m);
  const hard = HARD_KEYS.some(has);
  if ((has('pwd') && hard) || (hard && has('pin'))) return 'high';
  if ((has('pwd') && (hard || SOFT_POSSESSION.some(has))) || (has('swk') && has('pin'))) return 'substantial';
  return 'low';
}

export function acrFor(amr: readonly string[]): string {
  return ACR[levelFor(amr)];
}

/** Deduplicated methods plus `mfa` when they include something known (pwd, pin) and something held. */
export function completeAmr(amr: readonly string[]): Amr[] {
  const set = new Set(amr.filter((m) => m !== 'mfa') as Amr[]);
  const knows = KNOWLEDGE.some((m) => set.has(m));
  const holds = [...HARD_KEYS, ...SOFT_POSSESSION].some((m) => set.has(m));
  const out = [...set];
  if (knows && holds) out.push('mfa');
  return out;
}

export function levelOfAcr(acr: unknown): AcrLevel | undefined {
  return (Object.keys(ACR) as AcrLevel[]).find((l) => ACR[l] === acr);
}

/**
 * The minimum level a request needs: the client's registered minimum, raised to the lowest level
 * among the `acr_values` it asked for (any of them satisfies the request).
 */
export function requiredLevel(input: { acrValues?: unknown; clientMinimum?: unknown; essential?: readonly string[] }): AcrLevel {
  let level: AcrLevel = levelOfAcr(input.clientMinimum) ?? 'low';
  const raise = (values: readonly string[]) => {
    const known = values.map(levelOfAcr).filter((l): l is AcrLevel => l !== undefined);
    if (known.length === 0) return;
    const lowest = known.reduce((a, b) => (rank(a) <= rank(b) ? a : b));
    if (rank(lowest) > rank(level)) level = lowest;
  };
  if (typeof input.acrValues === 'string') raise(input.acrValues.split(' ').filter(Boolean));
  if (input.essential?.length) raise(input.essential);
  return level;
}

/**
 * The acr to assert after a sign-in that reached `reached`. When the client demanded specific
 * values as essential, assert the highest of them that was met, so the engine's check matches.
 */
export function acrToAssert(reached: AcrLevel, essential: readonly string[] | undefined): string {
  if (essential?.length) {
    const met = essential
      .map(levelOfAcr)
      .filter((l): l is AcrLevel => l !== undefined && rank(l) <= rank(reached))
      .sort((a, b) => rank(b) - rank(a));
    if (met[0]) return ACR[met[0]];
  }
  return ACR[reached];
}
