/**
 * Recovery codes as a registered factor: a second factor yielding `otp` that never stands alone
 * (offered and accepted only while the account has a factor that does), on a page of its own, and
 * the backup codes issued after a first enrolment.
 */
import { z } from 'zod';
import { KapijaError } from '../../errors.js';
import type { Factor } from '../types.js';
import type { RecoveryFactor } from './index.js';

const codeBody = z.object({ code: z.string().trim().min(1).max(64) });

export function createRecoveryRegistration(recovery: RecoveryFactor): Factor {
  return {
    id: 'recovery',
    step: 'second',
    standsAlone: false,
    listed: false,
    amr: ['otp'],
    labels: { name: 'account.security.recovery', heading: 'mfa.recovery.heading' },
    second: {
      expectedAmr: async () => ['otp'],
      async verify({ accountId, body }) {
        const parsed = codeBody.safeParse(body);
        if (!parsed.success) throw new KapijaError('factor.recovery.invalid_code', 401);
        const ok = await recovery.verify(accountId, parsed.data.code);
        return { accountId, amr: [...ok.amr], remaining: ok.remaining };
      },
      form: { kind: 'page', view: 'interaction/recovery', link: 'mfa.recovery.link' },
    },
    backup: { issue: (accountId) => recovery.issue(accountId), remaining: (accountId) => recovery.remaining(accountId) },
  };
}
