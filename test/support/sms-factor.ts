/**
 * A factor that exists only in the tests: one-time codes "sent by SMS" to a phone number kept with
 * the credential, delivered to an outbox the test reads. It is built only from the Factor
 * interface (src/factors/types.ts) and registered through createKapija's `extraFactors`, to show
 * that a factor plugs in without any change to the sign-in pages, the portal or the console.
 */
import { randomInt, timingSafeEqual } from 'node:crypto';
import { KapijaError } from '../../src/errors.js';
import type { Factor } from '../../src/factors/types.js';
import type { CredentialRepository } from '../../src/store/credentials.js';
import type { SecretBox } from '../../src/security/crypto.js';

export interface SmsOutbox {
  /** The messages sent, newest last: the phone number and the code. */
  readonly sent: Array<{ phone: string; code: string }>;
}

export function createSmsFactor(deps: { credentials: CredentialRepository; box: SecretBox; outbox: SmsOutbox }): Factor {
  const { credentials, box, outbox } = deps;
  const phoneOf = async (accountId: string) => {
    const [credential] = await credentials.list(accountId, 'sms');
    return credential ? String(credential.config.phone) : undefined;
  };
  return {
    id: 'sms',
    step: 'second',
    standsAlone: true,
    listed: true,
    labels: { name: 'test.sms.name', heading: 'test.sms.heading' },
    second: {
      expectedAmr: async () => ['sms'],
      /** Sends a code to the account's phone; what is kept in the sign-in is its sealed value. */
      async challenge(accountId) {
        const phone = await phoneOf(accountId);
        if (!phone) throw new KapijaError('factor.not_enrolled', 400);
        const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
        outbox.sent.push({ phone, code });
        return { options: { sent: true }, state: box.seal(code, `sms:${accountId}`) };
      },
      async verify({ accountId, body, challenge }) {
        const typed = (body as { code?: unknown } | undefined)?.code;
        if (!challenge || typeof typed !== 'string') throw new KapijaError('factor.totp.invalid_code', 401);
        const expected = Buffer.from(box.openString(challenge, `sms:${accountId}`));
        const given = Buffer.from(typed.trim());
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new KapijaError('factor.totp.invalid_code', 401);
        return { accountId, amr: ['sms'] };
      },
      form: { kind: 'code', label: 'test.sms.label', submit: 'test.sms.submit', inputmode: 'numeric', maxlength: 6 },
    },
  };
}
