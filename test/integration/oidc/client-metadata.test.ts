/**
 * The engine loads a stored client only when its kapija_* properties follow Kapija's rules
 * (oidc/client-metadata.ts): a client written past the admin API and the CLI, with a property the
 * engine cannot use, is refused rather than used half-understood.
 */
import { kapijaForSuite, createTestClient } from '../../support/kapija.js';
import { ACR } from '../../../src/oidc/acr.js';

describe("the engine checks a stored client's kapija_* properties", () => {
  const server = kapijaForSuite();

  test('a client with valid properties loads with them', async () => {
    const { clientId } = await createTestClient(server.kapija, {
      kapija_sector: 'porez.gov.rs',
      kapija_min_acr: ACR.substantial,
      kapija_access_token_ttl: 300,
      kapija_resource_server: false,
      kapija_claim_purposes: { email: { en: 'To send the tax notice' } },
    });
    const client = await server.kapija.provider.Client.find(clientId);
    expect(client?.metadata()).toMatchObject({ kapija_sector: 'porez.gov.rs', kapija_min_acr: ACR.substantial, kapija_access_token_ttl: 300 });
  });

  test.each([
    ['kapija_sector', 'porez.gov.rs/path', /kapija_sector must be a host name/],
    ['kapija_min_acr', 'high', /kapija_min_acr must be one of the configured acr values/],
    ['kapija_access_token_ttl', -5, /kapija_access_token_ttl must be a positive integer/],
    ['kapija_refresh_token_ttl', 1.5, /kapija_refresh_token_ttl must be a positive integer/],
    ['kapija_claim_purposes', ['email'], /kapija_claim_purposes must be an object/],
    ['kapija_first_party', 'yes', /kapija_first_party must be a boolean/],
    ['kapija_ciba_jmbg_hint', 'true', /kapija_ciba_jmbg_hint must be a boolean/],
  ])('%s = %j is refused by the engine', async (key, value, message) => {
    const { clientId } = await createTestClient(server.kapija, { [key]: value });
    await expect(server.kapija.provider.Client.find(clientId)).rejects.toThrow(message);
  });

  test('CIBA: a ping client needs an https notification endpoint; push is not offered', async () => {
    const ciba = { grant_types: ['urn:openid:params:grant-type:ciba'], response_types: [], redirect_uris: [], subject_type: 'public' };
    const ping = await createTestClient(server.kapija, { ...ciba, backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'https://callcentre.example/ciba' });
    expect((await server.kapija.provider.Client.find(ping.clientId))?.metadata()).toMatchObject({ backchannel_token_delivery_mode: 'ping' });
    const plain = await createTestClient(server.kapija, { ...ciba, backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'http://callcentre.example/ciba' });
    await expect(server.kapija.provider.Client.find(plain.clientId)).rejects.toMatchObject({ error: 'invalid_client_metadata', error_description: 'backchannel_client_notification_endpoint must be a https uri' });
    const push = await createTestClient(server.kapija, { ...ciba, backchannel_token_delivery_mode: 'push', backchannel_client_notification_endpoint: 'https://callcentre.example/ciba' });
    await expect(server.kapija.provider.Client.find(push.clientId)).rejects.toMatchObject({ error: 'invalid_client_metadata', error_description: expect.stringContaining('backchannel_token_delivery_mode') });
  });
});
