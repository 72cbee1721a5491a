/**
 * The ordered list of migrations. Imported rather than scanned from disk, so that the same list runs
 * from TypeScript sources, from the compiled build and inside the test runner.
 */
import type { Knex } from 'knex';
import * as initial from './20261127000000_initial.js';
import * as credentials from './20261127010000_credentials.js';
import * as rateLimits from './20261127020000_rate_limits.js';
import * as sessionDevices from './20261127030000_session_devices.js';
import * as administration from './20261127050000_administration.js';
import * as selfService from './20261128100000_self_service.js';
import * as openData from './20261129000000_open_data.js';

interface Migration {
  readonly name: string;
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

import * as jmbg from './20261130000000_jmbg.js';
import * as logoutDeliveries from './20261201000000_logout_deliveries.js';
import * as mailQueue from './20261201010000_mail_queue.js';
import * as factorReset from './20261206010001_factor_reset.js';
import * as consentRefusals from './20261206030000_consent_refusals.js';
import * as auditCheckpoints from './20261206050000_audit_checkpoints.js';
import * as accountLifecycle from './20261206060001_account_lifecycle.js';
import * as rateLimitsKeyed from './20261206070001_rate_limits_keyed.js';
import * as webauthnAttestation from './20261206080001_webauthn_attestation.js';
import * as certificateCrls from './20261206090001_certificate_crls.js';
import * as identityProofing from './20261206090002_identity_proofing.js';
import * as certificateHandoffs from './20261206100001_certificate_handoffs.js';
import * as trustedBrowsers from './20261206110001_trusted_browsers.js';
import * as mandates from './20261206120001_mandates.js';
import * as mandateGrantsInteraction from './20261206130001_mandate_grants_interaction.js';
import * as cibaDecisions from './20261206140001_ciba_decisions.js';
import * as walletCredentials from './20261206150001_wallet_credentials.js';
import * as walletPresentations from './20261206160001_wallet_presentations.js';
const migrations: readonly Migration[] = [
  { name: '20261127000000_initial', ...initial },
  { name: '20261127010000_credentials', ...credentials },
  { name: '20261127020000_rate_limits', ...rateLimits },
  { name: '20261127030000_session_devices', ...sessionDevices },
  { name: '20261127050000_administration', ...administration },
  { name: '20261128100000_self_service', ...selfService },
  { name: '20261129000000_open_data', ...openData },
  { name: '20261130000000_jmbg', ...jmbg },
  { name: '20261201000000_logout_deliveries', ...logoutDeliveries },
  { name: '20261201010000_mail_queue', ...mailQueue },
  { name: '20261206010001_factor_reset', ...factorReset },
  { name: '20261206030000_consent_refusals', ...consentRefusals },
  { name: '20261206050000_audit_checkpoints', ...auditCheckpoints },
  { name: '20261206060001_account_lifecycle', ...accountLifecycle },
  { name: '20261206070001_rate_limits_keyed', ...rateLimitsKeyed },
  { name: '20261206080001_webauthn_attestation', ...webauthnAttestation },
  { name: '20261206090001_certificate_crls', ...certificateCrls },
  { name: '20261206090002_identity_proofing', ...identityProofing },
  { name: '20261206100001_certificate_handoffs', ...certificateHandoffs },
  { name: '20261206110001_trusted_browsers', ...trustedBrowsers },
  { name: '20261206120001_mandates', ...mandates },
  { name: '20261206130001_mandate_grants_interaction', ...mandateGrantsInteraction },
  { name: '20261206140001_ciba_decisions', ...cibaDecisions },
  { name: '20261206150001_wallet_credentials', ...walletCredentials },
  { name: '20261206160001_wallet_presentations', ...walletPresentations },
];

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => [...migrations],
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
};
