/**
 * The identity half of a sign-in: the acr asserted is the lower of the authentication level and the
 * identity level (levels.ts). When the factors reach what the service needs but the identity does
 * not, the interaction shows a page (views/interaction/identity.eta) explaining how to verify it,
 * with a "continue" that checks again and otherwise ends with unmet_authentication_requirements.
 */
import type { Context } from 'koa';
import type { Renderer } from '../http/render.js';
import type { Translate } from '../i18n/index.js';
import type { AcrLevel } from '../assurance/levels.js';
import { honestLevel, identitySupports, type IdentityLevel } from './levels.js';

export interface IdentityLevelSource {
  levelOf(accountId: string): Promise<IdentityLevel>;
}

/** The level to assert and whether the identity falls short of what the service needs. */
export async function identityOutcome(source: IdentityLevelSource, accountId: string, authentication: AcrLevel, needed: AcrLevel): Promise<{ reached: AcrLevel; short: boolean; identity: IdentityLevel }> {
  const identity = await source.levelOf(accountId);
  return { reached: honestLevel(authentication, identity), short: !identitySupports(identity, needed), identity };
}

export function renderIdentityStep(ctx: Context, render: Renderer, data: { uid: string; service: string }): void {
  const t = ctx.state.t as Translate;
  render(ctx, 'interaction/identity', { title: t('identity.title'), uid: data.uid, service: data.service });
}
