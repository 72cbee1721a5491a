/**
 * The rules for what a person types: e-mail addresses and usernames. One rule each, shared by the
 * registration and recovery pages, the citizen's profile and the CLI, so an address one of them
 * accepts is accepted by all.
 */

/** Longest accepted e-mail address (RFC 5321). */
export const EMAIL_MAX = 254;
/** Longest accepted username, as stored (after normalisation). */
export const USERNAME_MAX = 64;

/** A local part of at most 64 characters, one @, and a domain with a dot and a top-level part of two or more. */
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,185}\.[^\s@]{2,}$/;
/** 3 to 64 letters, digits, . _ @ - (checked on the normalised username). */
const USERNAME = /^[\p{L}\p{N}._@-]{3,64}$/u;

/** Whether `value` (already trimmed) is an e-mail address Kapija accepts. */
export function isEmail(value: string): boolean {
  return value.length <= EMAIL_MAX && EMAIL.test(value);
}

/** Whether `value` is a valid username; callers check it as stored (normaliseUsername, store/accounts.ts). */
export function isUsername(value: string): boolean {
  return USERNAME.test(value);
}
