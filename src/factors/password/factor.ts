/**
 * The password as a registered factor: the first factor of the sign-in form. Unknown usernames,
 * wrong passwords and malformed input fail alike, after a hash was verified either way; a hash of
 * older parameters is replaced by one of today's at a successful sign-in.
 */
import { z } from 'zod';
import { KapijaError } from '../../errors.js';
import type { AccountRepository } from '../../store/accounts.js';
import type { Factor } from '../types.js';
import type { PasswordHasher } from './hasher.js';

const loginBody = z.object({
  username: z.string().trim().min(1).max(64),
  password: z.string().min(1).max(1024),
});

/** The username a login form carries, when it is well-formed (for the throttle and the form shown again). */
export function typedUsername(body: unknown): string | undefined {
  const parsed = loginBody.safeParse(body);
  return parsed.success ? parsed.data.username : undefined;
}

export function createPasswordFactor(deps: { accounts: Pick<AccountRepository, 'findCredentialsByUsername' | 'setPasswordHash'>; passwords: PasswordHasher }): Factor {
  const { accounts, passwords } = deps;
  return {
    id: 'password',
    step: 'first',
    standsAlone: false,
    listed: false,
    storesCredentials: false,
    amr: ['pwd'],
    labels: { name: 'login.password', heading: 'login.title' },
    first: {
      path: 'login',
      /** @throws KapijaError login.invalid_credentials (401), naming in its details the account a wrong password was typed for. */
      async identify({ body }) {
        const parsed = loginBody.safeParse(body);
        const found = parsed.success ? await accounts.findCredentialsByUsername(parsed.data.username) : undefined;
        const ok = await passwords.verify(found?.passwordHash, parsed.success ? parsed.data.password : '');
        if (!ok || !found || !parsed.success) throw new KapijaError('login.invalid_credentials', 401, { details: { accountId: found?.account.id } });
        if (found.account.status === 'active' && found.passwordHash && passwords.needsRehash(found.passwordHash)) {
          await accounts.setPasswordHash(found.account.id, await passwords.hash(parsed.data.password));
        }
        return { accountId: found.account.id, amr: ['pwd'], account: found.account };
      },
    },
  };
}
