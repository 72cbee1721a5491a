/** The EU PID (PID rulebook, SD-JWT VC encoding) as Kapija issues and accepts it. */
export const PID_VCT = 'urn:eudi:pid:1';
export const PID_CREDENTIAL_CONFIGURATION_ID = 'eu.europa.ec.eudi.pid.1';
export const PID_FORMAT = 'dc+sd-jwt';
/** The attributes, every one selectively disclosable. */
export const PID_ATTRIBUTES = ['family_name', 'given_name', 'birthdate', 'nationalities', 'personal_administrative_number'] as const;
export type PidAttribute = (typeof PID_ATTRIBUTES)[number];
