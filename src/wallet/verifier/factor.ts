/**
 * The wallet as a registered first factor (`wallet`): the citizen presents the PID from an EUDI
 * wallet (OpenID4VP), which identifies the account by its verified JMBG and proves two factors at
 * once (the wallet's key and its unlock: service.ts walletAmr), so the sign-in needs no second step.
 *
 * The sign-in page offers it as a button (`first.redirect`): `start` sends the browser to the wallet
 * page of this sign-in (router.ts), which shows the same-device link and the QR code. The answer
 * comes back to `/interaction/:uid/wallet/identify` (the identify step's GET): with the response code
 * in the same-device flow, with the cross-device request's id after the page saw it answered. Either
 * is redeemed once, and only for the sign-in it was made for, which only the browser holding that
 * interaction's cookie can enter.
 */
import { KapijaError } from '../../errors.js';
import type { Factor } from '../../factors/types.js';
import type { WalletVerifier } from './service.js';

export function createWalletFactor(deps: { verifier: WalletVerifier; issuer: string }): Factor {
  return {
    id: 'wallet',
    step: 'first',
    amr: ['pop'],
    standsAlone: false,
    listed: false,
    storesCredentials: false,
    labels: { name: 'factor.wallet.name', heading: 'login.wallet' },
    first: {
      redirect: {
        origin: new URL(deps.issuer).origin,
        async start(interaction) {
          return `${deps.issuer}/interaction/${encodeURIComponent(interaction)}/wallet`;
        },
      },
      async identify(attempt) {
        const body = (attempt.body ?? {}) as { response_code?: unknown; request?: unknown };
        if (!attempt.interaction) throw new KapijaError('wallet.response_invalid', 401);
        const outcome = await deps.verifier.redeem(attempt.interaction, { responseCode: body.response_code, request: body.request });
        if (!outcome) throw new KapijaError('wallet.response_invalid', 401);
        if (!outcome.ok) throw new KapijaError('wallet.refused', 401, { details: { reason: outcome.reason, refusal: true } });
        return { accountId: outcome.accountId, amr: outcome.amr };
      },
    },
  };
}
