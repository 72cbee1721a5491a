/**
 * Time-based one-time passwords (RFC 6238) with otplib: SHA-1, 6 digits, 30-second steps, one step
 * of tolerance each way (RFC 6238 §5.2). Each time-step is accepted once per credential: the store's
 * compare-and-set on `last_step` refuses a replay on every instance. Keys are sealed at rest.
 */
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib/functional';
import QRCode from 'qrcode';
import { KapijaError } from '../../errors.js';
import type { SecretBox } from '../../security/crypto.js';
import type { CredentialRepository } from '../../store/credentials.js';
import type { FactorSuccess } from '../types.js';

export const TOTP_PERIOD = 30;
const CODE = /^\d{6}$/;

export interface TotpEnrolment {
  /** Base32 key for manual entry. */
  readonly secret: string;
  readonly uri: string;
  /** QR code of the otpauth:// URI as an SVG document, rendered on the server. */
  readonly qrSvg: string;
}

export interface TotpFactor {
  begin(label: string): Promise<TotpEnrolment>;
  /** The QR code and key of a pending enrolment, to show it again. */
  view(secret: string, label: string): Promise<TotpEnrolment>;
  /** Activates a key after a correct code. @throws KapijaError factor.totp.invalid_code */
  finish(accountId: string, secret: string, code: string, name?: string): Promise<void>;
  /** @throws KapijaError factor.totp.invalid_code for a wrong, stale or replayed code. */
  verify(accountId: string, code: string): Promise<FactorSuccess>;
  /** Provisions a hardware OATH token from its base32 seed. */
  importSeed(accountId: string, seed: string, name?: string): Promise<void>;
  sealSecret(secret: string, accountId: string): string;
  openSecret(sealed: string, accountId: string): string;
}

export function normaliseCode(code: string): string {
  return code.replace(/[\s-]/g, '');
}

export function createTotpFactor(deps: {
  credentials: CredentialRepository;
  box: SecretBox;
  issuerName: string;
  now?: () => number;
}): TotpFactor {
  const { credentials, box, issuerName } = deps;
  const now = deps.now ?? Date.now;
  const epoch = () => Math.floor(now() / 1000);
  const context = (accountId: string) => `totp:${accountId}`;

  /** The time-step the code matches within ±1 step, or undefined. */
  const matchStep = async (secret: string, code: string): Promise<number | undefined> => {
    const result = await verifyTotp({ secret, token: code, epoch: epoch(), epochTolerance: TOTP_PERIOD, period: TOTP_PERIOD });
    return result.valid ? (result as { timeStep: number }).timeStep : undefined;
  };

  const invalid = () => new KapijaError('factor.totp.invalid_code', 401);

  const factor: TotpFactor = {
    begin: (label) => factor.view(generateSecret({ length: 20 }), label),
    async view(secret, label) {
      const uri = generateURI({ issuer: issuerName, label, secret, period: TOTP_PERIOD });
      const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { secret, uri, qrSvg };
    },
    async finish(accountId, secret, code, name) {
      const clean = normaliseCode(code);
      const step = CODE.test(clean) ? await matchStep(secret, clean) : undefined;
      if (step === undefined) throw invalid();
      const credential = await credentials.add({ accountId, type: 'totp', name: name ?? 'Authenticator app', secretEnc: box.seal(secret, context(accountId)) });
      // The enrolment code counts as used: it cannot be replayed at the next sign-in.
      await credentials.acceptTotpStep(credential.id, step);
    },
    async verify(accountId, code) {
      const clean = normaliseCode(code);
      if (!CODE.test(clean)) throw invalid();
      for (const credential of await credentials.list(accountId, 'totp')) {
        if (!credential.secretEnc) continue;
        const step = await matchStep(box.openString(credential.secretEnc, context(accountId)), clean);
        if (step !== undefined && (await credentials.acceptTotpStep(credential.id, step, now()))) {
          return { accountId, amr: ['otp'] };
        }
      }
      throw invalid();
    },
    async importSeed(accountId, seed, name) {
      const secret = seed.replace(/[\s=]/g, '').toUpperCase();
      if (!/^[A-Z2-7]{16,128}$/.test(secret)) throw new KapijaError('request.invalid', 400);
      await credentials.add({ accountId, type: 'totp', name: name ?? 'Hardware token', secretEnc: box.seal(secret, context(accountId)) });
    },
    sealSecret: (secret, accountId) => box.seal(secret, `totp-pending:${accountId}`),
    openSecret: (sealed, accountId) => box.openString(sealed, `totp-pending:${accountId}`),
  };
  return factor;
}

/** What an enrolment page shows: the key in groups of four and the QR code as a data URI. */
export function displayEnrolment(enrolment: TotpEnrolment): { secret: string; qrDataUri: string } {
  return {
    secret: enrolment.secret.replace(/(.{4})/g, '$1 ').trim(),
    qrDataUri: `data:image/svg+xml;base64,${Buffer.from(enrolment.qrSvg).toString('base64')}`,
  };
}
