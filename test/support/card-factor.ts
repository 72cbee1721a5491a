/**
 * A first factor that exists only in the tests, shaped like an eID smart card: the card (found by
 * its serial number, kept as a credential's lookup) and the PIN it checked prove possession and
 * knowledge in one step, yielding `sc` + `pin`, so the sign-in needs no second factor. A real card
 * would prove possession with a signature over a challenge; here the "card" is its serial and PIN.
 */
import { timingSafeEqual } from 'node:crypto';
import { KapijaError } from '../../src/errors.js';
import type { Factor } from '../../src/factors/types.js';
import type { CredentialRepository } from '../../src/store/credentials.js';

export function createCardFactor(deps: { credentials: CredentialRepository }): Factor {
  const failed = () => new KapijaError('factor.webauthn.failed', 401);
  return {
    id: 'card',
    step: 'first',
    standsAlone: false,
    listed: false,
    labels: { name: 'test.card.name', heading: 'test.card.heading' },
    first: {
      async identify({ body }) {
        const response = (body as { response?: { id?: unknown; pin?: unknown } } | undefined)?.response;
        if (typeof response?.id !== 'string' || typeof response.pin !== 'string') throw failed();
        const card = await deps.credentials.findByLookup('card', response.id);
        const pin = Buffer.from(String(card?.config.pin ?? ''));
        const typed = Buffer.from(response.pin);
        if (!card || pin.length !== typed.length || !timingSafeEqual(pin, typed)) throw failed();
        return { accountId: card.accountId, amr: ['sc', 'pin'] };
      },
    },
  };
}
