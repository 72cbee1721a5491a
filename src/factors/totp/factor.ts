/**
 * The authenticator app (TOTP) as a registered factor: a second factor yielding `otp`, enrolled
 * during the sign-in (the pending key is kept sealed in the sign-in until a correct code) or on the
 * portal.
 */
import { z } from 'zod';
import { KapijaError, assertThat } from '../../errors.js';
import type { Factor } from '../types.js';
import { displayEnrolment, type TotpFactor } from './index.js';

const codeBody = z.object({ code: z.string().trim().min(1).max(64) });

function code(body: unknown): string {
  const parsed = codeBody.safeParse(body);
  if (!parsed.success) throw new KapijaError('factor.totp.invalid_code', 401);
  return parsed.data.code;
}

export function createTotpRegistration(totp: TotpFactor): Factor {
  return {
    id: 'totp',
    step: 'second',
    standsAlone: true,
    listed: true,
    amr: ['otp'],
    labels: { name: 'account.security.type.totp', heading: 'mfa.totp.heading' },
    second: {
      expectedAmr: async () => ['otp'],
      async verify({ accountId, body }) {
        const ok = await totp.verify(accountId, code(body));
        return { accountId, amr: [...ok.amr] };
      },
      form: { kind: 'code', label: 'mfa.totp.label', hint: 'mfa.totp.hint', submit: 'mfa.totp.submit', inputmode: 'numeric', maxlength: 8 },
    },
    enrolment: {
      path: 'enrol',
      partial: 'factors/totp-enrol',
      async begin(account, state) {
        if (state) return { state, view: displayEnrolment(await totp.view(totp.openSecret(state, account.id), account.username)) };
        const shown = await totp.begin(account.username);
        return { state: totp.sealSecret(shown.secret, account.id), view: displayEnrolment(shown) };
      },
      async finish({ accountId, body, pending }) {
        assertThat(pending, 'interaction.invalid_step');
        const typed = code(body);
        await totp.finish(accountId, totp.openSecret(pending, accountId), typed);
        return { accountId, amr: ['otp'] };
      },
    },
  };
}
