/**
 * Cookie names. With an https issuer, the cookies scoped to the whole site carry the `__Host-`
 * prefix (RFC 6265bis 4.1.3.2): the browser then accepts them only with Secure, Path=/ and no
 * Domain, so a neighbouring subdomain or a plain-http page cannot plant or overwrite them. Over
 * plain http (development) the prefix cannot be set and is left off. Cookies scoped to a path
 * (/interaction/…, /auth/…, /account, /admin) cannot carry it and keep their plain names, and so does
 * the device cookie, whose name is shared with the sign-in throttle.
 */
export const hostCookie = (name: string, secure: boolean): string => (secure ? `__Host-${name}` : name);
