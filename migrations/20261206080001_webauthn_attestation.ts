/**
 * What each WebAuthn credential was judged at registration: its AAGUID, how its attestation was
 * verified ('none', 'self', 'unverified', 'mds', or 'legacy' for credentials registered before
 * attestation was requested) and whether it counts as a hardware key ('hwk') or not ('swk').
 * Credentials registered before are 'legacy'/'swk': only an operator's allow-list of AAGUIDs
 * (WEBAUTHN_HWK_AAGUIDS) makes them hardware keys again.
 *
 * webauthn_metadata holds the imported FIDO Metadata Service BLOBs (verified before they are
 * stored); the one with the greatest serial number is in force.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('credentials', (t) => {
    t.string('aaguid', 36).nullable();
    t.string('attestation', 16).nullable();
    t.string('assurance', 3).nullable();
  });
  const rows = (await db('credentials').select('id', 'config').where({ type: 'webauthn' })) as { id: string; config: string }[];
  for (const row of rows) {
    let aaguid: string | null = null;
    try {
      const value = (JSON.parse(row.config) as { aaguid?: unknown }).aaguid;
      if (typeof value === 'string' && /^[0-9a-f-]{36}$/i.test(value)) aaguid = value.toLowerCase();
    } catch {
      aaguid = null;
    }
    await db('credentials').where({ id: row.id }).update({ aaguid, attestation: 'legacy', assurance: 'swk' });
  }
  await db.schema.createTable('webauthn_metadata', (t) => {
    t.bigInteger('no').primary();
    t.string('next_update', 10).notNullable();
    t.text('entries').notNullable();
    t.bigInteger('imported_at').notNullable();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('webauthn_metadata');
  await db.schema.alterTable('credentials', (t) => {
    t.dropColumn('assurance');
    t.dropColumn('attestation');
    t.dropColumn('aaguid');
  });
}
