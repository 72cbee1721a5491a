/**
 * Security keys and passkeys (WebAuthn) as a registered factor. Second factor: the account's
 * credentials, `hwk` or `swk` (with `user`, and `pin` when the authenticator verified the user).
 * First factor: a discoverable passkey with user verification identifies the account, and a
 * device-bound one that verified its PIN is both factors at once. Each ceremony's challenge is kept
 * in the sign-in and used once.
 */
import { z } from 'zod';
import { KapijaError } from '../../errors.js';
import type { Factor, FactorChallenge } from '../types.js';
import type { WebAuthnFactor } from './index.js';

const webauthnBody = z.object({ response: z.record(z.string(), z.unknown()), name: z.string().max(100).optional() });

function ceremony(body: unknown, challenge: string | undefined) {
  const parsed = webauthnBody.safeParse(body);
  if (!challenge || !parsed.success) throw new KapijaError('factor.webauthn.failed', 401);
  return { challenge, ...parsed.data };
}

const challengeOf = async (options: Promise<{ challenge: string }>): Promise<FactorChallenge> => {
  const o = await options;
  return { options: o, state: o.challenge };
};

export function createWebAuthnRegistration(webauthn: WebAuthnFactor): Factor {
  return {
    id: 'webauthn',
    step: 'both',
    standsAlone: true,
    listed: true,
    amr: ['hwk', 'swk'],
    labels: { name: 'account.security.type.webauthn', heading: 'mfa.webauthn.heading' },
    first: {
      path: 'passkey',
      challenge: () => challengeOf(webauthn.authenticationOptions()),
      async identify({ body, challenge }) {
        const c = ceremony(body, challenge);
        const ok = await webauthn.verify(c.challenge, c.response);
        return { accountId: ok.accountId, amr: [...ok.amr] };
      },
    },
    second: {
      expectedAmr: async (accountId) => [(await webauthn.strongest(accountId)) ?? 'swk'],
      challenge: (accountId) => challengeOf(webauthn.authenticationOptions(accountId)),
      async verify({ accountId, body, challenge }) {
        const c = ceremony(body, challenge);
        const ok = await webauthn.verify(c.challenge, c.response, accountId);
        return { accountId, amr: [...ok.amr] };
      },
      form: { kind: 'ceremony' },
    },
    enrolment: {
      path: 'register',
      partial: 'factors/webauthn-enrol',
      challenge: (account) => challengeOf(webauthn.registrationOptions(account.id, account.username)),
      async finish({ accountId, body, challenge }) {
        const c = ceremony(body, challenge);
        const credential = await webauthn.register(accountId, c.challenge, c.response, c.name ?? 'Security key');
        return { accountId, amr: [credential.assurance === 'hwk' ? 'hwk' : 'swk'] };
      },
    },
  };
}
