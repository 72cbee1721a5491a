/**
 * Kapija's own errors. The code is both the stable API value and the i18n message key
 * (`error.<code>` in the catalogues), so a page and a JSON body say the same thing.
 */
export type ErrorCode =
  | 'request.invalid'
  | 'request.csrf'
  | 'request.not_found'
  | 'request.too_large'
  | 'interaction.expired'
  | 'interaction.invalid_step'
  | 'login.invalid_credentials'
  | 'login.account_locked'
  | 'login.rate_limited'
  | 'login.acr_unmet'
  | 'factor.totp.invalid_code'
  | 'factor.recovery.invalid_code'
  | 'factor.recovery.not_alone'
  | 'factor.webauthn.failed'
  | 'certificate.refused'
  | 'certificate.return_invalid'
  | 'certificate.ticket_invalid'
  | 'certificate.no_proxy'
  | 'wallet.refused'
  | 'wallet.response_invalid'
  | 'factor.not_enrolled'
  | 'factor.last_one'
  | 'admin.unauthenticated'
  | 'admin.forbidden'
  | 'admin.read_only'
  | 'admin.reauthenticate'
  | 'admin.step_up_required'
  | 'admin.client.not_found'
  | 'admin.client.exists'
  | 'admin.client.invalid_metadata'
  | 'admin.client.protected'
  | 'admin.client.no_secret'
  | 'admin.citizen.not_found'
  | 'login.email_unverified'
  | 'link.invalid'
  | 'mail.unavailable'
  | 'service.unavailable'
  | 'server.internal'
  | 'identity.invalid'
  | 'identity.invalid_jmbg'
  | 'identity.duplicate_jmbg'
  | 'identity.document_expired'
  | 'identity.own_account'
  | 'identity.not_found'
  | 'identity.activation_invalid'
  | 'identity.registrar_required'
  | 'mandate.invalid'
  | 'mandate.representative_invalid'
  | 'mandate.own_account'
  | 'mandate.not_found'
  | 'mandate.forbidden'
  | 'wallet.not_eligible'
  | 'wallet.credential_not_found'
  | 'wallet.offer_invalid'
  | 'ciba.not_pending'
  | 'ciba.answered'
  | 'ciba.level_unmet';

export class KapijaError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status = 400,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(code, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KapijaError';
    this.details = options?.details;
  }

  readonly details: Record<string, unknown> | undefined;

  /** Whether the message may be shown to the client, as in oidc-provider's errors. */
  get expose(): boolean {
    return this.status < 500;
  }
}

/** Throws a KapijaError unless `value` is truthy; narrows the type otherwise. */
export function assertThat(value: unknown, code: ErrorCode, status = 400): asserts value {
  if (!value) throw new KapijaError(code, status);
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  'SQLITE_BUSY',
]);

/**
 * True for errors that mean the database cannot be reached right now (refused, reset, shutting down,
 * pool exhausted). Those become 503 instead of 500: the request may be retried.
 */
export function isUnavailableError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth += 1) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
    if (name === 'KnexTimeoutError') return true;
    if (typeof message === 'string' && /Connection terminated|Client has encountered a connection error/.test(message)) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
