/**
 * Request bodies of the registrar routes of the admin API (registrar-api.ts), validated with zod.
 */
import { z } from 'zod';
import type { ProofingInput } from '../identity/service.js';

const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD');
const name = z.string().trim().min(1).max(100);

export const verifiedAttributesBody = z
  .object({
    given_name_cyrl: name.optional(),
    family_name_cyrl: name.optional(),
    given_name_latn: name.optional(),
    family_name_latn: name.optional(),
    birthdate: date.optional(),
    jmbg: z.string().regex(/^\d{13}$/, '13 digits').optional(),
  })
  .strict();

export const documentCheckBody = z
  .object({
    level: z.enum(['low', 'substantial', 'high']),
    method: z.enum(['in_person', 'remote_document', 'letter']).default('in_person'),
    /** The office the citizen is told about. */
    office: z.string().trim().min(1).max(200),
    evidence: z
      .object({
        document_type: z.enum(['idcard', 'passport', 'residence_permit']),
        issuing_country: z.string().regex(/^[A-Z]{2,3}$/, 'ISO 3166-1 code'),
        document_number: z.string().trim().min(3).max(40),
        expiry: date,
      })
      .strict(),
    attributes: verifiedAttributesBody.required({ given_name_cyrl: true, family_name_cyrl: true, given_name_latn: true, family_name_latn: true, birthdate: true, jmbg: true }),
  })
  .strict();

export type DocumentCheckBody = z.infer<typeof documentCheckBody>;

export const activationBody = z.object({ account_id: z.string().min(1).max(36).optional(), check: documentCheckBody }).strict();
export const counterAccountBody = z.object({ username: z.string().trim().min(3).max(64), check: documentCheckBody }).strict();
export const correctionBody = z.object({ attributes: verifiedAttributesBody, reason: z.string().trim().min(1).max(200) }).strict();
export const revocationBody = z.object({ reason: z.string().trim().min(1).max(200) }).strict();

export function attributesOf(a: z.infer<typeof verifiedAttributesBody>) {
  return {
    givenNameCyrl: a.given_name_cyrl,
    familyNameCyrl: a.family_name_cyrl,
    givenNameLatn: a.given_name_latn,
    familyNameLatn: a.family_name_latn,
    birthdate: a.birthdate,
    jmbg: a.jmbg,
  };
}

/** The proofing a registrar's document check records; the verifier is the registrar's account. */
export function proofingOf(check: DocumentCheckBody, registrarId: string): ProofingInput {
  return {
    method: check.method,
    level: check.level,
    verifier: registrarId,
    office: check.office,
    evidence: { type: 'document', documentType: check.evidence.document_type, issuingCountry: check.evidence.issuing_country, documentNumber: check.evidence.document_number, expiry: check.evidence.expiry },
    attributes: attributesOf(check.attributes),
  };
}

/** Legal representation recorded from an official decision (POST /registrar/accounts/:accountId/mandates). */
export const legalRepresentationBody = z
  .object({
    /** The representative, by account id (as GET /registrar/accounts finds it) or by user name: exactly one. */
    representative_id: z.string().min(1).max(36).optional(),
    representative_username: z.string().trim().min(1).max(64).optional(),
    basis: z.enum(['guardian', 'parent']),
    /** The official decision's reference (court or guardianship authority), kept with the mandate. */
    decision_ref: z.string().trim().min(1).max(200),
    purposes: z.array(z.string().max(32)).min(1).max(10),
    /** Client ids; left out or null: every service that accepts representation. */
    services: z.array(z.string().max(200)).min(1).max(50).nullable().optional(),
    valid_from: date.optional(),
    valid_until: date.optional(),
  })
  .strict()
  .refine((b) => (b.representative_id === undefined) !== (b.representative_username === undefined), {
    message: 'exactly one of representative_id and representative_username',
    path: ['representative_id'],
  });
