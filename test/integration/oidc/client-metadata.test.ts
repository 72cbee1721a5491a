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
  ])('%s = %j is refused by the engine', async (key, value, message) => {
    const { clientId } = await createTestClient(server.kapija, { [key]: value });
    await expect(server.kapija.provider.Client.find(clientId)).rejects.toThrow(message);
  });
});
