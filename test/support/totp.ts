/**
 * TOTP codes for tests, as an authenticator app would show them. Kapija accepts each time-step
 * once, so successive sign-ins of one citizen within 30 seconds use the next step (within the ±1
 * tolerance) or wait for a fresh one.
 */
import { generate } from 'otplib/functional';

const lastStep = new Map<string, number>();

export async function nextTotpCode(secret: string): Promise<string> {
  for (;;) {
    const now = Math.floor(Date.now() / 1000);
    const current = Math.floor(now / 30);
    const used = lastStep.get(secret) ?? -1;
    const step = used < current ? current : used === current ? current + 1 : undefined;
    if (step !== undefined) {
      lastStep.set(secret, step);
      return generate({ secret, epoch: step * 30 });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Marks the step of `code` for `secret` as used by someone else (e.g. a test that replays it). */
export function markTotpStepUsed(secret: string, step: number): void {
  lastStep.set(secret, Math.max(lastStep.get(secret) ?? -1, step));
}
