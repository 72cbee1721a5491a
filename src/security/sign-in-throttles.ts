/**
 * The throttles of the sign-in pages and the keys each attempt is counted under: passwords per
 * account name and address (with an account-wide ceiling that a browser known to the account passes),
 * second factors per account (they already need the password), passwordless passkeys per credential
 * id and address.
 */
import type { SecretBox } from './crypto.js';
import { createThrottle, PASSKEY_TIERS, PASSWORD_TIERS, TIERS, type AttemptOptions, type Throttle, type ThrottleKeys, type ThrottleStorage } from './rate-limit.js';

export interface SignInThrottles {
  password: Throttle;
  secondFactor: Throttle;
  passkey: Throttle;
  /**
   * The keys of a password attempt for `account` (the normalised name typed) from `ip`, and whether
   * the browser's device cookie belongs to a browser that completed a sign-in to that account before.
   */
  passwordAttempt(input: { account: string; ip: string; deviceCookie: string | undefined }): { keys: ThrottleKeys; opts: AttemptOptions };
  /** The keys of a passkey attempt: the credential id the client offered (if any) and its address. */
  passkeyAttempt(response: unknown, ip: string): ThrottleKeys;
}

export interface SignInThrottleDeps {
  /** Where the throttles keep their counters. */
  storage: ThrottleStorage;
  box: Pick<SecretBox, 'mac'>;
  /** Whether the account named `username` has completed a sign-in from the device with this hash. */
  isKnownDevice(username: string, deviceHash: string): Promise<boolean>;
}

const DEVICE_COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** The keyed hash a device cookie is known by (as in `known_devices`), or undefined for a malformed one. */
export function deviceCookieHash(box: Pick<SecretBox, 'mac'>, cookie: string | undefined): string | undefined {
  return cookie && DEVICE_COOKIE_VALUE.test(cookie) ? box.mac('device', cookie) : undefined;
}

export function createSignInThrottles(deps: SignInThrottleDeps): SignInThrottles {
  const { storage, box } = deps;
  return {
    password: createThrottle(storage, { scope: 'password', box, tiers: PASSWORD_TIERS }),
    secondFactor: createThrottle(storage, { scope: 'second-factor', box, tiers: TIERS }),
    passkey: createThrottle(storage, { scope: 'passkey', box, tiers: PASSKEY_TIERS }),
    passwordAttempt({ account, ip, deviceCookie }) {
      const device = deviceCookieHash(box, deviceCookie);
      return {
        keys: { account, ip, device },
        opts: { trusted: async () => (device && account ? deps.isKnownDevice(account, device) : false) },
      };
    },
    passkeyAttempt(response, ip) {
      const id = response && typeof response === 'object' ? (response as { id?: unknown }).id : undefined;
      return { ip, credential: typeof id === 'string' && id.length > 0 && id.length <= 1024 ? id : undefined };
    },
  };
}
